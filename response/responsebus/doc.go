// Package responsebus connects the response engine to the bus (NATS
// JetStream, package bus): the detections it consumes, the decisions it
// records, the notifications it publishes, the suppression windows it
// keeps, and the isolate and release commands it sends to agents.
//
//   - Detections is a response.DetectionSource over a durable consumer of
//     cordon.detections.>: a detection is acknowledged only when the
//     engine has recorded its decision.
//   - Sink records each response.Decision as the audit event
//     cordon.events.<host>.decision (message id = decision id, so a
//     redelivered detection is stored once).
//   - Publisher publishes notify messages on their subject.
//   - Suppressions is a response.SuppressionStore in the KV bucket
//     cordon-suppression: windows and counts survive an engine restart.
//   - Commands is a response.Isolator that signs isolate and release
//     commands and publishes them on cordon.commands.<host>.
//
// # Usage
//
//	b, _ := bus.Open(ctx, bus.Config{URLs: urls})
//	supp, _ := responsebus.NewSuppressions(ctx, b.JetStream(), responsebus.SuppressionsConfig{Replicas: b.Replicas()})
//	iso, _ := responsebus.NewCommands(responsebus.CommandsConfig{Bus: b, Key: signer})
//	eng, _ := response.New(response.Config{
//		Services:     response.Services{Isolator: iso, Publisher: responsebus.Publisher{Conn: b.Conn()}},
//		Sink:         responsebus.Sink{Bus: b},
//		Suppressions: supp,
//	})
//	err := eng.Run(ctx, responsebus.Detections{Bus: b})
//
// # Concurrency
//
// Every type is safe for concurrent use.
package responsebus
