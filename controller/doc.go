// Package controller is ringmq's cluster control plane as a state machine:
// which brokers exist (with a broker epoch per registration, alive or
// fenced), which topics exist with their configs, and for each partition
// its replicas, leader, leader epoch, partition epoch and in-sync replicas
// (ISR). One Raft group over the configured nodes (go.etcd.io/raft/v3's
// RawNode) orders every change.
//
// # API
//
// State is the pure, deterministic metadata: Apply(index, Command) changes
// it, AppendSnapshot/ParseSnapshot encode all of it. Node wraps a RawNode
// and a State in the Tick / Step / Propose / Ready / Advance style: the
// driver ticks it, feeds it peers' messages, persists what Ready returns,
// calls Advance, then sends Ready's messages; committed commands are
// applied to State inside Ready. Only the Raft leader's Node makes
// liveness decisions (fencing silent brokers, giving partitions back to
// their preferred replica), and it makes them by proposing commands.
//
// # Concurrency
//
// No I/O, no goroutines, no clock: time is the driver's Tick calls. A Node
// and its State are owned by one goroutine (the controller driver) and are
// not safe for concurrent use.
//
// # Rules
//
//   - Placement spreads replicas and preferred leaders evenly over alive
//     brokers; a replication factor above the alive brokers is
//     ErrNotEnoughBrokers.
//   - A broker's epoch is the Raft index of its registration, so it grows
//     with each registration. A broker silent for longer than the session
//     timeout is fenced: it leaves every ISR that has another member and its
//     leaderships move to the rest of the ISR.
//   - Leaders come only from the ISR (no unclean election). A partition
//     whose only ISR member is fenced is offline (NoLeader) and keeps that
//     member (last replica standing).
//   - A re-registering broker leaves every ISR that has another member and
//     every leadership; the partition leader adds it back with CmdExpandISR
//     (fenced by the partition epoch and the broker epoch) once it has
//     caught up. As a last ISR member it leads again only with LogsIntact;
//     an empty disk never counts as in sync.
//   - Leader epochs only grow; every change of leader or ISR grows the
//     partition epoch, and CmdExpandISR, CmdShrinkISR and CmdElectLeader
//     name the partition epoch they were decided at (stale ones are
//     rejected, ErrStalePartitionEpoch).
//
// # Record format
//
// A command (a Raft entry's data) and a snapshot are each one frame.
// Little-endian; persisted in the Raft log and snapshots: never change.
//
//	offset size field
//	     0    4 length    bytes after the crc field (>= 2)
//	     4    4 crc32c    Castagnoli over those length bytes
//	     8    1 version   recordVersion = 1
//	     9    1 type      CommandType 1..13, or 0x80 for a snapshot
//	    10    … fields    uvarints, and strings as uvarint length + bytes
//
// Command fields: proposer, request, then by type (booleans are one uvarint
// 0 or 1):
//
//	1 register-broker  broker, addr, logs_intact
//	2 fence-broker     broker, broker_epoch
//	3 create-topic     topic, partitions, replicas, n, n × (key, value)
//	4 delete-topic     topic
//	5 expand-isr       topic, partition, partition_epoch, broker, broker_epoch
//	6 shrink-isr       topic, partition, partition_epoch, broker
//	7 elect-leader     topic, partition, partition_epoch, broker
//	8 alter-topic      topic, n, n × (key, value)   (the whole new set)
//	9 add-partitions   topic, partitions (new total), replicas
//	10 upsert-user     user, credential
//	11 delete-user     user
//	12 create-acls     acls
//	13 delete-acls     acls
//
// A credential is mechanism (1 SCRAM-SHA-256, 2 SCRAM-SHA-512), salt
// (uvarint length + bytes), iterations, stored_key, server_key (both
// length + bytes); acls is one acl.AppendEntries frame as length + bytes.
//
// Snapshot fields:
//
//	applied, n_brokers, n × (id, addr, epoch, alive),
//	n_topics, n × (name, n_configs, n × (key, value), n_partitions,
//	    n × (n_replicas, replicas…, leader+1, leader_epoch,
//	         partition_epoch, n_isr, isr…)),
//	[ n_users, n × (name, n_credentials, n × credential), acls ]
//
// The bracketed security part is written only when the state has a user
// or an ACL entry, so a state without them keeps the bytes it had before
// the part existed (and such older snapshots parse).
// Brokers are ordered by id and topics by name, so equal states encode to
// equal bytes. ParseSnapshot also checks the state's invariants.
package controller
