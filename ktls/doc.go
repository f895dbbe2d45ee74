// Package ktls is what installing TLS 1.3 keys in a Linux socket (kernel
// TLS) takes: the traffic keys and IVs derived from a handshake's traffic
// secrets (RFC 8446 §7.1, §7.3), the secrets taken from crypto/tls through
// a per-connection key log, the kernel's crypto_info structures, and the
// setsockopt sequence (TCP_ULP "tls", then TLS_TX and TLS_RX) behind the
// Sockopts interface so that it is tested with a fake. Probe says whether
// the running kernel has kTLS at all (setsockopt TCP_ULP fails with ENOENT
// when the tls module is absent).
//
// The server does not yet move records through the kernel (that needs
// record types from recvmsg control messages for alerts and KeyUpdate):
// server.ktls decides only between starting with user-space TLS and
// refusing to start (Decide).
//
// crypto_info layout (linux/tls.h; version and cipher_type in host byte
// order, rec_seq big endian):
//
//	AES-128-GCM        version u16 | cipher_type u16 (51) | iv [8] | key [16] | salt [4] | rec_seq [8]   40 bytes
//	AES-256-GCM        version u16 | cipher_type u16 (52) | iv [8] | key [32] | salt [4] | rec_seq [8]   56 bytes
//	CHACHA20-POLY1305  version u16 | cipher_type u16 (54) | iv [12] | key [32] | rec_seq [8]            56 bytes
//
// For TLS 1.3 (version 0x0304) the 12-byte write IV is split: salt = its
// first 4 bytes and iv = its last 8 for AES-GCM; ChaCha20 takes all 12.
//
// Functions are safe for concurrent use; a KeyLog is written by one
// handshake.
package ktls
