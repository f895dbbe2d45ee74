// Package acl decides authorization in the Kafka/Redpanda model: who
// (a principal) may do what (an operation) to which resource (a topic, a
// group or the cluster). It is I/O-free and not wired into the server yet.
//
// An Entry allows or denies one operation on the resources its pattern
// matches, for one principal or for every principal ("*"). New builds an
// Authorizer from entries and superusers; Authorizer.Allowed decides one
// request without allocating. An Authorizer never changes after New, so a
// new entry list is published by building a new Authorizer and swapping a
// pointer (copy-on-write); any number of goroutines may call Allowed.
//
// Rules of Allowed, in order:
//
//   - an unknown operation or resource type (OpAll included) is refused;
//   - a superuser is allowed everything;
//   - a matching deny entry refuses, whatever allows it (deny wins);
//   - a matching allow entry allows;
//   - nothing matches: refused (default deny).
//
// An entry matches when its principal is the request's or "*", its
// resource type is the request's, its pattern matches the name (literal:
// equal, or the literal name "*" for every name; prefixed: the name starts
// with it), and its operation is the request's or OpAll. An allow of Read,
// Write, Delete or Alter also allows Describe (Kafka's rule); a deny of
// them does not deny Describe.
//
// AppendEntries and ParseEntries are the stored form of an entry list, one
// CRC-framed record (all integers little-endian, uv = uvarint):
//
//	+---------+-----------+------------------------------------------+
//	| len u32 | crc32c u32| body (len bytes; the CRC covers it)      |
//	+---------+-----------+------------------------------------------+
//	body:  magic u8 (0xAC) | version u8 (1) | count uv | entry*count
//	entry: principal (len uv, bytes) | resource u8 | pattern u8 |
//	       name (len uv, bytes) | operation u8 | permission u8
//
// The wire values of the enums are part of the format: never renumber.
package acl
