// Package tlsengine drives crypto/tls for a connection whose socket is
// owned by an io_uring reactor, so that TLS cannot wrap a net.Conn.
//
// A connection's TLS life has two phases:
//
//   - Handshake (Handshake): on a goroutine of a small bounded pool, never
//     on a reactor, with a deadline. The socket is read one TLS record at a
//     time (the 5-byte header, then exactly the length it names), so no
//     byte past the client's last handshake record is taken: requests a
//     client pipelines right after its Finished stay in the socket for the
//     reactor.
//   - Records (Engine): the reactor feeds the ciphertext it received into
//     the same tls.Conn through an in-memory transport whose Read reports
//     a timeout when it is empty (crypto/tls keeps a partial record and the
//     connection stays usable), and takes the ciphertext the tls.Conn
//     wrote (encrypted responses, and what the engine answers by itself:
//     KeyUpdate replies, alerts) from its output buffer to send it.
//
// An Engine is owned by one goroutine at a time (the reactor serving the
// connection; a shard hand-off passes it through a mailbox); it is not
// safe for concurrent use.
package tlsengine
