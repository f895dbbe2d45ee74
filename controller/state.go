package controller

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ringmq/ringmq/acl"
	"github.com/ringmq/ringmq/proto"
)

const maxNameLen = proto.MaxNameLen

// NoLeader is the leader of a partition none of whose in-sync replicas is
// alive (an offline partition).
const NoLeader int32 = -1

// Broker is one registered broker.
type Broker struct {
	ID    int32
	Addr  string
	Epoch uint64 // the Raft index of its latest registration; grows with each
	Alive bool   // false once fenced, until it registers again
}

// Partition is one partition's replica set and leadership.
type Partition struct {
	Replicas       []int32 // placement order; Replicas[0] is the preferred leader
	Leader         int32   // NoLeader when offline
	LeaderEpoch    int32   // grows with every change of leader
	PartitionEpoch int32   // grows with every change of leader or ISR
	ISR            []int32 // in replica order; contains Leader when there is one
}

// Topic is one topic: its config overrides and partitions.
type Topic struct {
	Name       string
	Configs    []ConfigEntry
	Partitions []Partition
}

// State is the controller's metadata: brokers, topics, users and ACL
// entries as of the last
// applied Raft index. It is changed only by Apply (and replaced by a
// snapshot), so every node that applies the same commands holds the same
// state. Not safe for concurrent use.
type State struct {
	applied uint64
	brokers map[int32]*Broker
	topics  map[string]*Topic
	users   map[string]*User
	acls    []acl.Entry
}

// NewState returns an empty state at Raft index applied.
func NewState(applied uint64) *State {
	return &State{applied: applied, brokers: map[int32]*Broker{}, topics: map[string]*Topic{}, users: map[string]*User{}}
}

// Applied is the Raft index of the last command applied.
func (s *State) Applied() uint64 { return s.applied }

// Broker returns a copy of broker id.
func (s *State) Broker(id int32) (Broker, bool) {
	b, ok := s.brokers[id]
	if !ok {
		return Broker{}, false
	}
	return *b, true
}

// Brokers returns the brokers ordered by id.
func (s *State) Brokers() []Broker {
	out := make([]Broker, 0, len(s.brokers))
	for _, id := range s.brokerIDs() {
		out = append(out, *s.brokers[id])
	}
	return out
}

// Topic returns topic name; its slices are shared with the state and must
// not be changed.
func (s *State) Topic(name string) (*Topic, bool) {
	t, ok := s.topics[name]
	return t, ok
}

// TopicNames returns the topic names in order.
func (s *State) TopicNames() []string {
	names := make([]string, 0, len(s.topics))
	for n := range s.topics {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func (s *State) brokerIDs() []int32 {
	ids := make([]int32, 0, len(s.brokers))
	for id := range s.brokers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (s *State) aliveIDs() []int32 {
	var ids []int32
	for _, id := range s.brokerIDs() {
		if s.brokers[id].Alive {
			ids = append(ids, id)
		}
	}
	return ids
}

func (s *State) alive(id int32) bool {
	b, ok := s.brokers[id]
	return ok && b.Alive
}

// Apply applies the command committed at Raft index, which must follow the
// last applied one. A rejected command (a stale epoch, a topic that exists,
// ...) changes nothing but the applied index and returns why; every node
// rejects it alike.
func (s *State) Apply(index uint64, c Command) error {
	if index <= s.applied {
		panic(fmt.Sprintf("BUG: controller: apply index %d after %d", index, s.applied))
	}
	s.applied = index
	if err := s.Validate(c); err != nil {
		return err
	}
	switch c.Type {
	case CmdRegisterBroker:
		s.register(index, c)
	case CmdFenceBroker:
		s.fence(c.Broker)
	case CmdCreateTopic:
		s.createTopic(c)
	case CmdDeleteTopic:
		delete(s.topics, c.Topic)
	case CmdAlterTopic:
		s.topics[c.Topic].Configs = slices.Clone(c.Configs)
	case CmdAddPartitions:
		s.addPartitions(c)
	case CmdExpandISR:
		p := s.partition(c.Topic, c.Partition)
		p.ISR = inReplicaOrder(p.Replicas, append(p.ISR, c.Broker))
		p.PartitionEpoch++
	case CmdShrinkISR:
		p := s.partition(c.Topic, c.Partition)
		p.ISR = without(p.ISR, c.Broker)
		p.PartitionEpoch++
	case CmdElectLeader:
		p := s.partition(c.Topic, c.Partition)
		p.setLeader(c.Broker)
		p.PartitionEpoch++
	case CmdUpsertUser, CmdDeleteUser, CmdCreateACLs, CmdDeleteACLs:
		s.applySecurity(c)
	}
	return nil
}

// Validate reports whether c would be accepted by the current state,
// without changing it: Apply's checks, usable before proposing.
func (s *State) Validate(c Command) error {
	switch c.Type {
	case CmdRegisterBroker:
		if c.Broker < 1 || c.Addr == "" || len(c.Addr) > MaxAddrLen {
			return fmt.Errorf("%w: register broker %d at %q: want id >= 1 and an address", ErrInvalid, c.Broker, c.Addr)
		}
		return nil
	case CmdFenceBroker:
		return s.checkBroker(c.Broker, c.BrokerEpoch)
	case CmdCreateTopic:
		return s.validateCreate(c)
	case CmdDeleteTopic:
		if _, ok := s.topics[c.Topic]; !ok {
			return fmt.Errorf("%w: %q", ErrUnknownTopic, c.Topic)
		}
		return nil
	case CmdAlterTopic:
		if _, ok := s.topics[c.Topic]; !ok {
			return fmt.Errorf("%w: %q", ErrUnknownTopic, c.Topic)
		}
		return validateConfigs(c.Configs)
	case CmdAddPartitions:
		return s.validateAddPartitions(c)
	case CmdExpandISR, CmdShrinkISR, CmdElectLeader:
		return s.validatePartitionChange(c)
	case CmdUpsertUser, CmdDeleteUser, CmdCreateACLs, CmdDeleteACLs:
		return s.validateSecurity(c)
	}
	return fmt.Errorf("%w: %d", ErrUnknownCommandType, uint8(c.Type))
}

func (s *State) checkBroker(id int32, epoch uint64) error {
	b, ok := s.brokers[id]
	switch {
	case !ok:
		return fmt.Errorf("%w: %d", ErrUnknownBroker, id)
	case b.Epoch != epoch:
		return fmt.Errorf("%w: broker %d epoch %d, current %d", ErrStaleBrokerEpoch, id, epoch, b.Epoch)
	case !b.Alive:
		return fmt.Errorf("%w: broker %d epoch %d", ErrBrokerFenced, id, epoch)
	}
	return nil
}

func (s *State) validateCreate(c Command) error {
	if !proto.ValidName([]byte(c.Topic)) {
		return fmt.Errorf("%w: topic name %q (want 1-%d of [A-Za-z0-9._-])", ErrInvalid, c.Topic, maxNameLen)
	}
	if _, ok := s.topics[c.Topic]; ok {
		return fmt.Errorf("%w: %q", ErrTopicExists, c.Topic)
	}
	if c.Partitions < 1 || c.Partitions > MaxPartitions {
		return fmt.Errorf("%w: %d partitions (want 1-%d)", ErrInvalid, c.Partitions, MaxPartitions)
	}
	if c.Replicas < 1 || c.Replicas > MaxReplicas {
		return fmt.Errorf("%w: replication factor %d (want 1-%d)", ErrInvalid, c.Replicas, MaxReplicas)
	}
	if err := validateConfigs(c.Configs); err != nil {
		return err
	}
	if live := len(s.aliveIDs()); int(c.Replicas) > live {
		return fmt.Errorf("%w: replication factor %d > %d live brokers", ErrNotEnoughBrokers, c.Replicas, live)
	}
	return nil
}

func validateConfigs(cs []ConfigEntry) error {
	if len(cs) > MaxConfigs {
		return fmt.Errorf("%w: %d configs (want at most %d)", ErrInvalid, len(cs), MaxConfigs)
	}
	for i, e := range cs {
		if e.Key == "" || len(e.Key) > MaxConfigKey || len(e.Value) > MaxConfigValue ||
			(i > 0 && strings.Compare(cs[i-1].Key, e.Key) >= 0) {
			return fmt.Errorf("%w: config %q (want keys sorted, unique, 1-%d bytes)", ErrInvalid, e.Key, MaxConfigKey)
		}
	}
	return nil
}

// validateAddPartitions: the topic exists, the new total is above its
// partition count and within MaxPartitions, and the new partitions' replication
// factor fits the live brokers.
func (s *State) validateAddPartitions(c Command) error {
	t, ok := s.topics[c.Topic]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, c.Topic)
	}
	if int(c.Partitions) <= len(t.Partitions) || c.Partitions > MaxPartitions {
		return fmt.Errorf("%w: %d partitions for %q, which has %d (want more, at most %d)",
			ErrInvalid, c.Partitions, c.Topic, len(t.Partitions), MaxPartitions)
	}
	if c.Replicas < 1 || c.Replicas > MaxReplicas {
		return fmt.Errorf("%w: replication factor %d (want 1-%d)", ErrInvalid, c.Replicas, MaxReplicas)
	}
	if live := len(s.aliveIDs()); int(c.Replicas) > live {
		return fmt.Errorf("%w: replication factor %d > %d live brokers", ErrNotEnoughBrokers, c.Replicas, live)
	}
	return nil
}

func (s *State) validatePartitionChange(c Command) error {
	p := s.partition(c.Topic, c.Partition)
	if p == nil {
		return fmt.Errorf("%w: %q partition %d", ErrUnknownTopic, c.Topic, c.Partition)
	}
	if c.PartitionEpoch != p.PartitionEpoch {
		return fmt.Errorf("%w: %s %q/%d at partition epoch %d, current %d",
			ErrStalePartitionEpoch, c.Type, c.Topic, c.Partition, c.PartitionEpoch, p.PartitionEpoch)
	}
	if !slices.Contains(p.Replicas, c.Broker) {
		return fmt.Errorf("%w: broker %d, %q/%d", ErrNotReplica, c.Broker, c.Topic, c.Partition)
	}
	inISR := slices.Contains(p.ISR, c.Broker)
	switch c.Type {
	case CmdExpandISR:
		if p.Leader == NoLeader {
			return fmt.Errorf("%w: %q/%d", ErrPartitionOffline, c.Topic, c.Partition)
		}
		if inISR {
			return fmt.Errorf("%w: broker %d, %q/%d", ErrAlreadyInISR, c.Broker, c.Topic, c.Partition)
		}
		return s.checkBroker(c.Broker, c.BrokerEpoch)
	case CmdShrinkISR:
		if !inISR {
			return fmt.Errorf("%w: broker %d, %q/%d", ErrNotInISR, c.Broker, c.Topic, c.Partition)
		}
		if c.Broker == p.Leader {
			return fmt.Errorf("%w: the leader %d cannot leave the ISR of %q/%d", ErrInvalid, c.Broker, c.Topic, c.Partition)
		}
	case CmdElectLeader:
		if !inISR {
			return fmt.Errorf("%w: broker %d, %q/%d (no unclean election)", ErrNotInISR, c.Broker, c.Topic, c.Partition)
		}
		if !s.alive(c.Broker) {
			return fmt.Errorf("%w: broker %d", ErrBrokerFenced, c.Broker)
		}
		if c.Broker == p.Leader {
			return fmt.Errorf("%w: broker %d, %q/%d", ErrAlreadyLeader, c.Broker, c.Topic, c.Partition)
		}
	}
	return nil
}

func (s *State) partition(topic string, i int32) *Partition {
	t, ok := s.topics[topic]
	if !ok || i < 0 || int(i) >= len(t.Partitions) {
		return nil
	}
	return &t.Partitions[i]
}

// forEachPartition visits every partition, topics in name order.
func (s *State) forEachPartition(f func(topic string, i int32, p *Partition)) {
	for _, name := range s.TopicNames() {
		t := s.topics[name]
		for i := range t.Partitions {
			f(name, int32(i), &t.Partitions[i])
		}
	}
}

// register records a (re-)registration at Raft index: the broker's epoch
// becomes index. A broker that was known before restarted, so whatever it
// had is unproven: it leaves every ISR that has another member (the
// partition leader adds it back with CmdExpandISR once it has caught up)
// and loses every leadership (a new leader comes from the rest of the ISR).
// Where it is the last ISR member, it leads again only if its logs survived
// (LogsIntact); otherwise the partition stays offline with an empty ISR,
// since an empty disk must never count as in sync.
func (s *State) register(index uint64, c Command) {
	if _, known := s.brokers[c.Broker]; known {
		s.forEachPartition(func(_ string, _ int32, p *Partition) {
			s.restarted(p, c.Broker, c.LogsIntact)
		})
	}
	s.brokers[c.Broker] = &Broker{ID: c.Broker, Addr: c.Addr, Epoch: index, Alive: true}
}

func (s *State) restarted(p *Partition, b int32, logsIntact bool) {
	if !slices.Contains(p.ISR, b) {
		return
	}
	others := without(p.ISR, b)
	switch {
	case len(others) > 0:
		p.ISR = others
		if p.Leader == b || p.Leader == NoLeader {
			p.setLeader(s.pickLeader(p))
		}
	case logsIntact:
		p.setLeader(b) // last replica standing, back with its data: a new epoch
	default:
		p.ISR = nil
		if p.Leader != NoLeader {
			p.setLeader(NoLeader)
		}
	}
	p.PartitionEpoch++
}

// fence marks a silent broker fenced: it leaves every ISR that has another
// member and its leaderships move to the rest of the ISR. Where it is the
// last ISR member it stays there (last replica standing) and the partition
// goes offline until it registers again.
func (s *State) fence(id int32) {
	s.brokers[id].Alive = false
	s.forEachPartition(func(_ string, _ int32, p *Partition) {
		if !slices.Contains(p.ISR, id) {
			return
		}
		if others := without(p.ISR, id); len(others) > 0 {
			p.ISR = others
			if p.Leader == id {
				p.setLeader(s.pickLeader(p))
			}
		} else if p.Leader == id {
			p.setLeader(NoLeader)
		} else {
			return
		}
		p.PartitionEpoch++
	})
}

// pickLeader returns the first alive ISR member in replica order (the
// preferred replica when it can lead), or NoLeader.
func (s *State) pickLeader(p *Partition) int32 {
	for _, r := range p.Replicas {
		if slices.Contains(p.ISR, r) && s.alive(r) {
			return r
		}
	}
	return NoLeader
}

// setLeader changes the leader and bumps the leader epoch; a leader epoch
// only grows.
func (p *Partition) setLeader(b int32) {
	p.Leader = b
	p.LeaderEpoch++
}

func (s *State) createTopic(c Command) {
	replicas := s.place(int(c.Partitions), int(c.Replicas))
	t := &Topic{Name: c.Topic, Configs: slices.Clone(c.Configs), Partitions: make([]Partition, c.Partitions)}
	for i, r := range replicas {
		t.Partitions[i] = Partition{Replicas: r, Leader: r[0], ISR: slices.Clone(r)}
	}
	s.topics[c.Topic] = t
}

// addPartitions grows a topic to c.Partitions, placing the new partitions
// like a creation does; existing partitions are unchanged.
func (s *State) addPartitions(c Command) {
	t := s.topics[c.Topic]
	for _, r := range s.place(int(c.Partitions)-len(t.Partitions), int(c.Replicas)) {
		t.Partitions = append(t.Partitions, Partition{Replicas: r, Leader: r[0], ISR: slices.Clone(r)})
	}
}

func without(ids []int32, id int32) []int32 {
	out := make([]int32, 0, len(ids))
	for _, x := range ids {
		if x != id {
			out = append(out, x)
		}
	}
	return out
}

// inReplicaOrder returns the members of set ordered as in replicas.
func inReplicaOrder(replicas, set []int32) []int32 {
	out := make([]int32, 0, len(set))
	for _, r := range replicas {
		if slices.Contains(set, r) {
			out = append(out, r)
		}
	}
	return out
}

// CheckInvariants reports the first broken rule of the state: replicas are
// distinct known brokers; the ISR is a subset of the replicas in replica
// order; a leader is an alive ISR member; a fenced broker is in an ISR only
// as its last member. Tests call it after every apply.
func (s *State) CheckInvariants() error {
	var err error
	s.forEachPartition(func(topic string, i int32, p *Partition) {
		if err == nil {
			if why := s.brokenRule(p); why != "" {
				err = fmt.Errorf("%s: %q/%d %+v", why, topic, i, *p)
			}
		}
	})
	return err
}

func (s *State) brokenRule(p *Partition) string {
	for j, r := range p.Replicas {
		if _, ok := s.brokers[r]; !ok || slices.Contains(p.Replicas[:j], r) {
			return fmt.Sprintf("replica %d unknown or repeated", r)
		}
	}
	if !slices.Equal(inReplicaOrder(p.Replicas, p.ISR), p.ISR) {
		return "ISR not a subset of the replicas in order"
	}
	if p.Leader != NoLeader && (!slices.Contains(p.ISR, p.Leader) || !s.alive(p.Leader)) {
		return "leader not an alive ISR member"
	}
	if p.Leader == NoLeader && s.pickLeader(p) != NoLeader {
		return "offline with an alive ISR member"
	}
	for _, r := range p.ISR {
		if !s.alive(r) && len(p.ISR) > 1 {
			return fmt.Sprintf("fenced broker %d in a shared ISR", r)
		}
	}
	return ""
}

// skip advances the applied index over an entry that carries no command.
func (s *State) skip(index uint64) {
	if index <= s.applied {
		panic(fmt.Sprintf("BUG: controller: apply index %d after %d", index, s.applied))
	}
	s.applied = index
}
