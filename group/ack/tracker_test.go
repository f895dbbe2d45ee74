package ack

import (
	"errors"
	"testing"
	"time"
)

func TestConfigRejected(t *testing.T) {
	for name, mod := range map[string]func(*Config){
		"no ack timeout":     func(c *Config) { c.AckTimeout = 0 },
		"no window":          func(c *Config) { c.MaxUnacked = 0 },
		"huge window":        func(c *Config) { c.MaxUnacked = maxWindow + 1 },
		"negative max deliv": func(c *Config) { c.MaxDeliveries = -1 },
		"max deliveries":     func(c *Config) { c.MaxDeliveries = 70000 },
		"negative backoff":   func(c *Config) { c.Backoff = []time.Duration{time.Second, -1} },
		"mode":               func(c *Config) { c.Mode = 7 },
		"negative delay cap": func(c *Config) { c.MaxDelay = -time.Second },
	} {
		cfg := baseConfig()
		mod(&cfg)
		if _, err := New(cfg, 0); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: New = %v, want ErrBadConfig", name, err)
		}
	}
}

// TestSharedTable drives a shared tracker through scripted steps; each
// step checks what Acquire hands out, or an input's error, and the floor.
func TestSharedTable(t *testing.T) {
	type step struct {
		do    func(tr *Tracker) (string, error)
		want  string // Acquire's ranges
		err   error
		floor uint64
	}
	acq := func(m Member, d time.Duration, max int, end uint64) func(*Tracker) (string, error) {
		return func(tr *Tracker) (string, error) {
			rs, err := tr.Acquire(nil, m, at(d), max, end, nil)
			return fmtRanges(rs), err
		}
	}
	in := func(f func(tr *Tracker) error) func(*Tracker) (string, error) {
		return func(tr *Tracker) (string, error) { return "", f(tr) }
	}
	cases := []struct {
		name  string
		cfg   func(*Config)
		steps []step
	}{
		{"window bounds hand-out", func(c *Config) { c.MaxUnacked = 4 }, []step{
			{do: acq(1, 0, 10, 100), want: "0-3x1"},
			{do: acq(2, 0, 10, 100), want: ""},
			{do: in(func(tr *Tracker) error { return tr.Ack(1, 1) }), floor: 0},
			{do: acq(2, 0, 10, 100), want: ""}, // F is still 0: 4 is past F+4
			{do: in(func(tr *Tracker) error { return tr.Ack(1, 0) }), floor: 2},
			{do: acq(2, 0, 10, 100), want: "4-5x1", floor: 2},
		}},
		{"log end bounds hand-out", nil, []step{
			{do: acq(1, 0, 10, 3), want: "0-2x1"},
			{do: acq(1, 0, 10, 3), want: ""},
			{do: acq(2, 0, 10, 5), want: "3-4x1"},
		}},
		{"ack by another member refused", nil, []step{
			{do: acq(1, 0, 2, 10), want: "0-1x1"},
			{do: in(func(tr *Tracker) error { return tr.Ack(2, 0) }), err: ErrNotHeld},
			{do: in(func(tr *Tracker) error { return tr.Ack(1, 5) }), err: ErrNotHeld},
			{do: in(func(tr *Tracker) error { return tr.Ack(1, 0) }), floor: 1},
			{do: in(func(tr *Tracker) error { return tr.Ack(1, 0) }), floor: 1}, // a retried ack
		}},
		{"nack redelivers first, to anyone", nil, []step{
			{do: acq(1, 0, 3, 10), want: "0-2x1"},
			{do: in(func(tr *Tracker) error { return tr.Nack(1, 1, at(0), 0, "boom") })},
			{do: in(func(tr *Tracker) error { return tr.Nack(1, 1, at(0), 0, "") }), err: ErrNotHeld},
			{do: acq(2, 0, 2, 10), want: "1x2 3x1"},
		}},
		{"nack delay", nil, []step{
			{do: acq(1, 0, 1, 10), want: "0x1"},
			{do: in(func(tr *Tracker) error { return tr.Nack(1, 0, at(0), 5*time.Second, "") })},
			{do: acq(2, 4*time.Second, 1, 10), want: "1x1"},
			{do: acq(2, 5*time.Second, 1, 10), want: "0x2"},
		}},
		{"backoff list", func(c *Config) { c.Backoff = []time.Duration{time.Second, 3 * time.Second} }, []step{
			{do: acq(1, 0, 1, 1), want: "0x1"},
			{do: in(func(tr *Tracker) error { return tr.Nack(1, 0, at(0), UseBackoff, "") })},
			{do: acq(1, 999*time.Millisecond, 1, 1), want: ""},
			{do: acq(1, time.Second, 1, 1), want: "0x2"},
			{do: in(func(tr *Tracker) error { return tr.Nack(1, 0, at(time.Second), UseBackoff, "") })},
			{do: acq(1, 3999*time.Millisecond, 1, 1), want: ""},
			{do: acq(1, 4*time.Second, 1, 1), want: "0x3"},
			{do: in(func(tr *Tracker) error { return tr.Nack(1, 0, at(4*time.Second), UseBackoff, "") })},
			{do: acq(1, 7*time.Second, 1, 1), want: "0x4"}, // the last entry repeats
		}},
		{"lock expiry", nil, []step{
			{do: acq(1, 0, 2, 10), want: "0-1x1"},
			{do: in(func(tr *Tracker) error {
				if n := tr.Expire(at(10*time.Second - 1)); n != 0 {
					return errors.New("expired early")
				}
				if n := tr.Expire(at(10 * time.Second)); n != 2 {
					return errors.New("not expired")
				}
				return nil
			})},
			{do: acq(2, 10*time.Second, 5, 3), want: "0-1x2 2x1"},
			{do: in(func(tr *Tracker) error { return tr.Ack(1, 0) }), err: ErrNotHeld}, // 2 took it
		}},
		{"late ack after expiry before redelivery", nil, []step{
			{do: acq(1, 0, 1, 10), want: "0x1"},
			{do: in(func(tr *Tracker) error { tr.Expire(at(time.Hour)); return tr.Ack(1, 0) }), floor: 1},
		}},
		{"member left", nil, []step{
			{do: acq(1, 0, 2, 10), want: "0-1x1"},
			{do: acq(2, 0, 2, 10), want: "2-3x1"},
			{do: in(func(tr *Tracker) error {
				if n := tr.MemberLeft(1, at(0)); n != 2 {
					return errors.New("released wrong count")
				}
				return nil
			})},
			{do: acq(2, 0, 3, 10), want: "0-1x2 4x1"},
		}},
		{"cumulative ack of own records only", nil, []step{
			{do: acq(1, 0, 2, 10), want: "0-1x1"},
			{do: acq(2, 0, 2, 10), want: "2-3x1"},
			{do: acq(1, 0, 2, 10), want: "4-5x1"},
			{do: in(func(tr *Tracker) error {
				if n := tr.AckCumulative(1, 5); n != 3 {
					return errors.New("acked wrong count")
				}
				return nil
			}), floor: 2},
			{do: in(func(tr *Tracker) error { return tr.Ack(2, 2) }), floor: 3},
			{do: in(func(tr *Tracker) error { return tr.Ack(2, 3) }), floor: 5},
		}},
		{"reject without dead-lettering is done", nil, []step{
			{do: acq(1, 0, 1, 10), want: "0x1"},
			{do: in(func(tr *Tracker) error { return tr.Reject(1, 0, "bad") }), floor: 1},
		}},
		{"max deliveries", func(c *Config) { c.MaxDeliveries = 2 }, []step{
			{do: acq(1, 0, 1, 1), want: "0x1"},
			{do: in(func(tr *Tracker) error { return tr.Nack(1, 0, at(0), 0, "") })},
			{do: acq(1, 0, 1, 1), want: "0x2"},
			{do: in(func(tr *Tracker) error { return tr.Nack(1, 0, at(0), 0, "") })},
			{do: acq(1, 0, 1, 1), want: ""},
			{do: in(func(tr *Tracker) error { return tr.DeadLettered(0) }), floor: 1},
			{do: in(func(tr *Tracker) error { return tr.DeadLettered(0) }), err: ErrNotDeadLetter, floor: 1},
		}},
		{"member 0 refused", nil, []step{
			{do: acq(0, 0, 1, 1), err: ErrNoMember},
		}},
		{"start offset", nil, []step{
			{do: acq(1, 0, 2, 1002), want: ""},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := baseConfig()
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			start := uint64(0)
			if c.name == "start offset" {
				start = 1002
			}
			tr := mustNew(t, cfg, start)
			for i, s := range c.steps {
				got, err := s.do(tr)
				if !errors.Is(err, s.err) || (s.err == nil && err != nil) {
					t.Fatalf("step %d: err %v, want %v", i, err, s.err)
				}
				if got != s.want {
					t.Fatalf("step %d: handed out %q, want %q", i, got, s.want)
				}
				if want := max(s.floor, start); tr.Floor() != want && (s.floor != 0 || i == len(c.steps)-1) {
					t.Fatalf("step %d: floor %d, want %d", i, tr.Floor(), want)
				}
			}
		})
	}
}

// TestDeadLetterOutput checks what a dead letter says and that Reject
// dead-letters when dead-lettering is on.
func TestDeadLetterOutput(t *testing.T) {
	cfg := baseConfig()
	cfg.MaxDeliveries = 5
	tr := mustNew(t, cfg, 40)
	var disk []byte
	persist(tr, &disk)
	acquire(t, tr, 7, t0, 2, 100, nil)
	if err := tr.Nack(7, 40, t0, 0, "first"); err != nil {
		t.Fatal(err)
	}
	acquire(t, tr, 7, t0, 1, 100, nil)
	if err := tr.Reject(7, 40, ""); err != nil {
		t.Fatal(err)
	}
	dls := persist(tr, &disk)
	want := DeadLetter{Topic: "orders", Partition: 3, Offset: 40, Deliveries: 2, LastError: "first"}
	if len(dls) != 1 || dls[0] != want {
		t.Fatalf("dead letters %+v, want [%+v]", dls, want)
	}
	if tr.Floor() != 40 {
		t.Fatalf("floor %d before the dead letter is confirmed", tr.Floor())
	}
	if err := tr.DeadLettered(40); err != nil {
		t.Fatal(err)
	}
	if err := tr.Ack(7, 41); err != nil || tr.Floor() != 42 {
		t.Fatalf("ack 41: %v, floor %d, want 42", err, tr.Floor())
	}
	if st, want := tr.Stats(), (Stats{Floor: 42, Redeliveries: 1, DeadLetters: 1}); st != want {
		t.Fatalf("stats %+v, want %+v", st, want)
	}
}

// TestPoisonRecord: a record that is always nacked reaches the dead-letter
// topic after exactly MaxDeliveries deliveries, also when the tracker
// restarts (restored from its records) in the middle: after any of the
// nacks, while a delivery is held (the restart releases it), and while the
// dead letter waits for its confirmation (it is handed out again).
func TestPoisonRecord(t *testing.T) {
	const maxDeliveries = 5
	for crashAt := -1; crashAt <= maxDeliveries; crashAt++ {
		for _, held := range []bool{false, true} {
			cfg := baseConfig()
			cfg.MaxDeliveries = maxDeliveries
			tr := mustNew(t, cfg, 0)
			var disk []byte
			persist(tr, &disk)
			restart := func() {
				var err error
				if tr, err = Restore(cfg, disk); err != nil {
					t.Fatalf("crash at %d: restore: %v", crashAt, err)
				}
			}
			deliveries := 0
			var dls []DeadLetter
			for step := 0; step < 3*maxDeliveries && len(dls) == 0; step++ {
				m := Member(1 + step%2)
				rs := acquire(t, tr, m, at(time.Duration(step)*time.Second), 1, 1, nil)
				if len(rs) == 1 {
					deliveries++
					if rs[0].Deliveries != deliveries {
						t.Fatalf("crash at %d: delivery %d counted %d", crashAt, deliveries, rs[0].Deliveries)
					}
					if step == crashAt && held {
						persist(tr, &disk)
						restart()
						continue
					}
					if err := tr.Nack(m, 0, at(0), 0, "poison"); err != nil {
						t.Fatal(err)
					}
				}
				if dl := persist(tr, &disk); len(dl) > 0 && crashAt == maxDeliveries {
					restart() // the dead letter was not appended yet
				} else {
					dls = append(dls, dl...)
				}
				if step == crashAt && !held {
					restart()
				}
				if tr.HasReady() {
					dls = append(dls, persist(tr, &disk)...)
				}
			}
			// A restart between the dead letter's output and its
			// confirmation hands it out again (at least once).
			ok := len(dls) >= 1
			for _, dl := range dls {
				ok = ok && dl.Deliveries == maxDeliveries && dl.Offset == 0
				// (no last error when the restart released the last delivery)
				ok = ok && (dl.LastError == "poison" || held && crashAt == maxDeliveries-1)
			}
			if deliveries != maxDeliveries || !ok {
				t.Fatalf("crash at %d (held %v): %d deliveries, dead letters %+v; want %d and the record",
					crashAt, held, deliveries, dls, maxDeliveries)
			}
			if err := tr.DeadLettered(0); err != nil || tr.Floor() != 1 {
				t.Fatalf("crash at %d: DeadLettered: %v, floor %d", crashAt, err, tr.Floor())
			}
		}
	}
}

// TestRestoreRefuses: no frames, deltas without a snapshot first, and a
// damaged frame in the middle are errors, never a tracker.
func TestRestoreRefuses(t *testing.T) {
	cfg := baseConfig()
	tr := mustNew(t, cfg, 0)
	var disk []byte
	persist(tr, &disk)
	acquire(t, tr, 1, t0, 3, 10, nil)
	tr.Ack(1, 1)
	persist(tr, &disk)
	tr.Ack(1, 0)
	persist(tr, &disk)
	if _, err := Restore(cfg, nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("no frames: %v", err)
	}
	_, rest, err := Parse(disk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(cfg, rest); !errors.Is(err, ErrCorrupt) {
		t.Errorf("no snapshot first: %v", err)
	}
	bad := append([]byte(nil), disk...)
	bad[len(disk)-len(rest)+12] ^= 0x40 // inside the second frame
	if _, err := Restore(cfg, bad); !errors.Is(err, ErrCorrupt) {
		t.Errorf("damaged second frame: %v", err)
	}
	if _, err := Restore(cfg, disk[:len(disk)-1]); !errors.Is(err, ErrTruncated) {
		t.Errorf("torn last frame: %v", err)
	}
	far := AppendAcquired(append([]byte(nil), disk...), []AcquiredRun{{Start: 1 << 40, End: 1<<40 + 1, Count: 1}})
	if _, err := Restore(cfg, far); !errors.Is(err, ErrCorrupt) {
		t.Errorf("offset far above the floor: %v", err)
	}
	far = AppendDone(append([]byte(nil), disk...), []Run{{Start: 5, End: 1 << 40}})
	if _, err := Restore(cfg, far); !errors.Is(err, ErrCorrupt) {
		t.Errorf("done run far above the floor: %v", err)
	}
	got, err := Restore(cfg, disk)
	if err != nil || got.Floor() != 2 || got.Deliveries(2) != 1 || got.Waiting() != 1 {
		t.Fatalf("restore: %v, floor %d, deliveries of 2: %d, waiting %d", err, got.Floor(), got.Deliveries(2), got.Waiting())
	}
}

// TestAckRange acks what the member holds in a range and reports the
// first record it does not hold.
func TestAckRange(t *testing.T) {
	tr := mustNew(t, baseConfig(), 0)
	acquire(t, tr, 1, t0, 3, 10, nil)
	acquire(t, tr, 2, t0, 1, 10, nil)
	acquire(t, tr, 1, t0, 2, 10, nil)
	tr.Ack(1, 1)
	tr.Ack(1, 2)
	n, err := tr.AckRange(1, 0, 6) // acking 0 moves the floor past 1 and 2
	if n != 3 || !errors.Is(err, ErrNotHeld) || tr.Floor() != 3 {
		t.Fatalf("AckRange = %d, %v, floor %d; want 3, ErrNotHeld, 3", n, err, tr.Floor())
	}
}
