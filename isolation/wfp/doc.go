// Package wfp is the Windows isolation.Enforcer: it isolates the host with
// Windows Filtering Platform (WFP) filters, installed through
// github.com/tailscale/wf.
//
// The filters live in cordon's own provider and sublayer (DefaultProvider,
// DefaultSublayer, both persistent) at the four ALE authorization layers,
// ALE_AUTH_CONNECT and ALE_AUTH_RECV_ACCEPT for IPv4 and IPv6, so they see
// every connection the host opens or accepts and no forwarded traffic.
// All filters are persistent: isolation survives an agent crash and a
// reboot (from the moment the Base Filtering Engine starts during boot;
// WFP boot-time filters, which cannot be persistent, are not used). Inside the sublayer:
//
//   - weight 0xf000: permit loopback (FLAGS has IS_LOOPBACK), every layer;
//   - weight 0xe000: permit each management endpoint (connect layers,
//     protocol, address and port) and the agent's own executable (app id)
//     to the endpoints' protocols and ports at any address, so that the bus
//     stays reachable when its name resolves anew (Config.NoAgentPermit
//     leaves that out);
//   - weight 0xd000: permit each rule of the plan, one filter per layer it
//     needs: "out" at the connect layers, "in" at the receive/accept
//     layers, per address family its remote prefixes cover; ports, ICMP
//     types (the local port field at the ALE layers) and application (app
//     id) as conditions;
//   - weight 0: a hard block with no condition, every layer.
//
// An application rule needs the program to exist when the plan is applied
// (FwpmGetAppIdFromFileName0 reads its path); otherwise Apply fails and
// changes nothing.
//
// Replies of an allowed flow pass by the ALE flow state; no "established"
// permit exists. Each filter's description is the plan line it comes from,
// which is how Observe reads the plan back.
//
// Apply replaces the sublayer's filters in one WFP transaction (nothing is
// written when they are already the plan's), reads the filters back and
// compares them with the plan's (isolation.ErrReadBack when they differ),
// then ends the live IPv4 TCP connections the filters do not permit, with
// SetTcpEntry and MIB_TCP_STATE_DELETE_TCB (when listing or ending one
// fails, Apply returns an error wrapping isolation.ErrConnectionsLeft, which
// implies isolation.ErrReadBack; the filters stay and the next Apply tries
// again). Windows has no such call for
// IPv6: IPv6 TCP connections that are not allowed are logged and left to
// WFP, which reauthorizes existing flows after a filter change and then
// drops their packets, so they stall until they time out instead of being
// reset. UDP has no connection to end; its flows are reauthorized the same
// way. Clear deletes the filters, the sublayer and the provider in one
// transaction.
//
// # Usage
//
//	e, err := wfp.New(wfp.Config{Logger: log})
//	if err != nil { ... }
//	defer e.Close()
//	err = e.Apply(ctx, plan) // isolated with exactly plan, or an error
//	...
//	err = e.Clear(ctx)
//
// Tests and other platforms pass Config.Open (a Session) and Config.Conns
// (a ConnTable): the seams behind which every platform call sits.
//
// # Concurrency
//
// An Enforcer is safe for concurrent use; its calls are serialized. A
// Session and a ConnTable are used by one goroutine at a time.
//
// # Platform support
//
// Verified here, on Linux, against an in-memory WFP engine (providers,
// sublayers, filters with WFP's referential checks, transactions, and
// WFP's arbitration inside a sublayer: highest weight wins, conditions on
// one field OR'ed, on different fields AND'ed) and an in-memory TCP table:
// the isolation conformance suite with probes of sample flows against
// isolation.Plan.Allows, transaction rollback at every step, read-back,
// repair of tampered state, which connections are ended, and golden files
// of the generated filter sets (testdata/*.golden; go test -update
// rewrites them). For Windows the package is only built and vetted
// (GOOS=windows go vet, go test -c).
//
// Only on a real Windows host (not done here): the translation of filters
// to and from wf.Rule (session_windows.go), the transaction calls, which
// reach the engine handle that wf.Session does not export (checked by
// reflection, failing with ErrSessionLayout if the layout differs), app
// ids from FwpmGetAppIdFromFileName0, GetExtendedTcpTable parsing and
// SetTcpEntry, WFP's arbitration across sublayers, and the
// reauthorization of existing flows described above.
package wfp
