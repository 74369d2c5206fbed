// Package bus carries cordon's detections, commands and audit events over
// NATS JetStream, with an embedded in-process server by default and a NATS
// cluster when one machine is not enough.
//
// Subjects and streams:
//
//	cordon.detections.<host>      CORDON_DETECTIONS  ioc.Detection (cordon.detection/v1)
//	cordon.commands.<host>        CORDON_COMMANDS    SignedCommand (cordon.command/v1)
//	cordon.events.<host>.<kind>   CORDON_EVENTS      Event (cordon.audit/v1)
//	cordon.deadletter.<stream>    CORDON_DEADLETTERS DeadLetter (cordon.deadletter/v1)
//	KV bucket cordon-isolation    last isolation state per host (JSON)
//
// Every message is a JSON document with a "schema" ("name/vMAJOR[.MINOR]")
// and an "id"; the id is also the Nats-Msg-Id header, so a publish retried
// within the stream's duplicate window is stored once. A consumer reads any
// minor version of the major version it knows.
//
// Consumers are durable pull consumers with explicit acknowledgement. A
// message is acknowledged after the handler returns nil, and delivered
// again after a delay from ConsumerConfig.Backoff when it returns an
// error, up to ConsumerConfig.MaxDeliver times; then it is recorded on
// cordon.deadletter.<stream> and terminated. A message that is too large,
// does not decode, has another schema or an unknown major version, or (for
// commands) fails verification, is dead-lettered at once; a command
// refused only because the Verifier's replay memory is full is retried
// like a failed handler instead. A handler that
// panics counts as failing. Delivery is at least once: handlers must be
// idempotent by message id.
//
// Commands are signed with ed25519 NKeys (SignCommand) and checked by a
// Verifier: trusted issuer, valid signature, target host, not expired, not
// issued in the future beyond the allowed skew, not replayed (ids are
// remembered until they expire). Commands carry a message TTL, so that a
// host offline past their expiry never receives them; one that comes back
// in time receives them from its durable consumer.
//
// # Usage
//
//	b, err := bus.Open(ctx, bus.Config{DataDir: "/var/lib/cordon/nats"})
//	if err != nil { … }
//	defer b.Close(ctx)
//
//	_, err = b.PublishDetection(ctx, det)
//
//	sub, err := b.ConsumeDetections(ctx, bus.ConsumerConfig{Durable: "engine"},
//		func(ctx context.Context, d ioc.Detection, dl bus.Delivery) error {
//			_, err := engine.Handle(ctx, &d) // idempotent by d.ID
//			return err
//		})
//	defer sub.Stop()
//
//	sc, err := bus.SignCommand(issuerKeys, bus.Command{Host: "h-42",
//		Action: bus.ActionIsolate, IssuedAt: now, Expires: now.Add(time.Hour)})
//	_, err = b.PublishCommand(ctx, sc)
//
//	v, err := bus.NewVerifier(bus.VerifierConfig{TrustedKeys: keys, Host: "h-42"})
//	sub, err = b.ConsumeCommands(ctx, "h-42", v, bus.ConsumerConfig{}, apply)
//
// With Config.URLs set, Open connects to existing servers instead
// (reconnecting forever, TLS, NKey or creds authentication), and creates
// the streams with three replicas when the server is part of a cluster.
//
// # Concurrency
//
// A Bus, a Subscription, a StateWatch and a Verifier are safe for
// concurrent use. A Subscription calls its handler for one message at a
// time, in stream order, unless ConsumerConfig.Workers is above 1; several
// Subscriptions (in one process or many) with the same Durable share the
// work. Close drains: handlers in progress finish with live contexts and
// are acknowledged; Subscription.Stop cancels them instead.
package bus
