package reactor

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"time"

	"github.com/ringmq/ringmq/controller"
	"github.com/ringmq/ringmq/controller/driver"
	"github.com/ringmq/ringmq/proto"
	"github.com/ringmq/ringmq/storage"
	"github.com/ringmq/ringmq/storage/metalog"
)

// The broker goroutine: this broker's registration with the controller
// (a new broker epoch each time), its heartbeats to the controller leader
// (through the local driver when this node leads, else a BrokerHeartbeat
// request to the leader's client port), and a new registration whenever
// the controller fenced it or no longer knows its epoch.

func (s *Server) brokerLoop() {
	cl := &s.cl
	defer close(cl.done)
	interval := max(s.cfg.Cluster.SessionTimeout/6, 50*time.Millisecond)
	hb := s.newPeerConn()
	defer hb.close()
	for !cl.stopping() {
		select {
		case <-cl.ctrl().Done():
			s.restartController()
			continue
		default:
		}
		if cl.epoch.Load() == 0 || s.fencedLocally() {
			if !s.register() {
				continue // stopping, or retry at once
			}
			cl.regOnce.Do(func() {
				s.importTopics()
				close(cl.registered)
				go s.offsetsTopicLoop()
			})
		}
		switch code := s.heartbeat(&hb); code {
		case proto.None, proto.NotController, proto.ControllerNotAvailable, proto.RequestTimedOut:
		case proto.StaleBrokerEpoch:
			s.log.Warn("broker fenced by the controller; registering again", "broker", cl.self, "epoch", cl.epoch.Load())
			cl.epoch.Store(0)
			continue
		default:
			s.log.Debug("broker heartbeat", "code", code)
		}
		select {
		case <-cl.stop:
		case <-time.After(interval):
		}
	}
}

// fencedLocally reports whether the applied state shows this broker's
// registration fenced (a session that expired while it could not reach
// the controller).
func (s *Server) fencedLocally() bool {
	b, ok := s.cl.ctrl().State().Broker(int32(s.cl.self))
	return ok && b.Epoch == s.cl.epoch.Load() && !b.Alive
}

// register proposes this broker's registration until it is applied (or
// the server stops) and records its broker epoch.
func (s *Server) register() bool {
	cl := &s.cl
	ctx, cancel := s.stopContext(proposeTimeout)
	defer cancel()
	intact := s.logsIntact()
	_, err := s.propose(ctx, controller.Command{Type: controller.CmdRegisterBroker,
		Broker: int32(cl.self), Addr: cl.addr, LogsIntact: intact})
	if err != nil {
		if !cl.stopping() {
			s.log.Warn("register with the controller; retrying", "broker", cl.self, "err", err)
		}
		return false
	}
	b, _ := cl.ctrl().State().Broker(int32(cl.self))
	cl.epoch.Store(b.Epoch)
	s.log.Info("broker registered", "broker", cl.self, "addr", cl.addr, "epoch", b.Epoch, "logs_intact", intact)
	return true
}

// logsIntact reports whether this broker still has the data of every
// partition the controller placed on it: a controller directory that
// existed before this start (a data directory that was wiped has none) and
// a log directory for each such partition. An empty disk never counts as
// in sync.
func (s *Server) logsIntact() bool {
	if s.cl.fresh {
		return false
	}
	onDisk, err := s.store.Partitions()
	if err != nil {
		return false
	}
	st := s.cl.ctrl().State()
	for _, name := range st.TopicNames() {
		t, _ := st.Topic(name)
		for i, p := range t.Partitions {
			if !slices.Contains(p.Replicas, int32(s.cl.self)) {
				continue
			}
			if !slices.ContainsFunc(onDisk, func(d storage.Partition) bool { return d.Topic == name && d.Partition == uint32(i) }) {
				return false
			}
		}
	}
	return true
}

// heartbeat tells the controller leader that this broker is alive.
func (s *Server) heartbeat(hb *peerConn) proto.ErrorCode {
	cl := &s.cl
	leader := uint32(cl.ctrl().Status().Leader)
	if leader == proto.NoNode {
		return proto.ControllerNotAvailable
	}
	epoch := cl.epoch.Load()
	if leader == cl.self {
		ctx, cancel := s.stopContext(heartbeatTimeout)
		defer cancel()
		return controllerCode(cl.ctrl().Heartbeat(ctx, int32(cl.self), epoch))
	}
	addr := cl.peers[leader]
	if b, ok := cl.ctrl().State().Broker(int32(leader)); ok {
		addr = b.Addr
	}
	var resp proto.BrokerHeartbeatResponse
	if err := hb.call(addr, &proto.BrokerHeartbeatRequest{BrokerID: cl.self, BrokerEpoch: epoch}, &resp); err != nil {
		s.log.Debug("heartbeat to the controller leader", "leader", leader, "addr", addr, "err", err)
		return proto.ControllerNotAvailable
	}
	return resp.Error
}

// serveHeartbeat answers a BrokerHeartbeat request (on its own goroutine,
// started by the admin goroutine: the driver call may wait).
func (s *Server) serveHeartbeat(j adminJob) {
	defer s.cl.inFlight.Add(-1)
	var req proto.BrokerHeartbeatRequest
	code, resp := proto.None, &proto.BrokerHeartbeatResponse{}
	if err := req.Decode(j.body); err != nil {
		code, resp = proto.InvalidRequest, nil
	} else {
		ctx, cancel := s.stopContext(heartbeatTimeout)
		err := s.cl.ctrl().Heartbeat(ctx, int32(req.BrokerID), req.BrokerEpoch)
		cancel()
		resp.Error = controllerCode(err)
		resp.ControllerID = uint32(s.cl.ctrl().Status().Leader)
	}
	s.reply(j, code, resp)
}

// importTopics moves the topics of the single-node metadata store (a
// server from before the controller) into the controller, each with its
// partitions on this broker, and removes them from the store once the
// controller holds them. Only a one-node cluster imports: elsewhere
// placement could put the partitions on brokers that lack their data.
func (s *Server) importTopics() {
	topics := s.meta.Topics()
	if len(topics) == 0 {
		return
	}
	if len(s.cl.peers) > 1 {
		names := make([]string, 0, len(topics))
		for _, t := range topics {
			names = append(names, t.Name)
		}
		s.log.Error("topics of a single-node data directory are not imported into a cluster of several nodes; "+
			"start this node alone (without cluster.peers) once to import them", "topics", names)
		return
	}
	for _, t := range topics {
		r, _, err := metalog.ParseTopicRecord(t.Config)
		if err != nil {
			s.log.Error("import topic: bad record in the metadata store", "topic", t.Name, "err", err)
			continue
		}
		ctx, cancel := s.stopContext(proposeTimeout)
		_, err = s.propose(ctx, controller.Command{Type: controller.CmdCreateTopic, Topic: t.Name,
			Partitions: int32(r.Partitions), Replicas: 1, Configs: configEntries(r.Overrides.Overrides())})
		cancel()
		if err != nil && !errors.Is(err, controller.ErrTopicExists) {
			s.log.Error("import topic into the controller", "topic", t.Name, "err", err)
			continue
		}
		if err := s.meta.DeleteTopic(t.Name); err != nil {
			s.log.Error("remove an imported topic from the metadata store", "topic", t.Name, "err", err)
		}
		s.log.Info("topic imported into the controller", "topic", t.Name, "partitions", r.Partitions)
	}
}

// peerConn is a connection to another node's client port for the broker
// goroutine's requests; one request at a time.
type peerConn struct {
	auth *brokerAuth // authenticate as the broker user; nil: do not
	tls  *tls.Config // the peers' client ports speak TLS (nil: plaintext)
	addr string
	c    net.Conn
	r    *bufio.Reader
	corr uint32
	buf  []byte
}

func (p *peerConn) close() {
	if p.c != nil {
		p.c.Close()
		p.c = nil
	}
}

// call sends req to addr (reconnecting when the address changed or the
// last call failed) and decodes the answer into resp.
func (p *peerConn) call(addr string, req proto.Request, resp proto.Message) error {
	if p.c != nil && p.addr != addr {
		p.close()
	}
	if p.c == nil {
		c, err := net.DialTimeout("tcp", addr, heartbeatTimeout)
		if err == nil && p.tls != nil {
			c, err = driver.DialTLS(c, addr, p.tls, heartbeatTimeout)
		}
		if err != nil {
			return err
		}
		p.addr, p.c, p.r = addr, c, bufio.NewReader(c)
		if p.auth != nil {
			if err := p.authenticate(); err != nil {
				p.close()
				return err
			}
		}
	}
	err := p.roundTrip(req, resp)
	if err != nil {
		p.close()
	}
	return err
}

func (p *peerConn) roundTrip(req proto.Request, resp proto.Message) error {
	p.corr++
	if err := p.c.SetDeadline(time.Now().Add(heartbeatTimeout)); err != nil {
		return err
	}
	p.buf = proto.AppendRequest(p.buf[:0], p.corr, req)
	if _, err := p.c.Write(p.buf); err != nil {
		return err
	}
	var lenBuf [proto.FrameLengthSize]byte
	if _, err := io.ReadFull(p.r, lenBuf[:]); err != nil {
		return err
	}
	n, _ := proto.FrameLength(lenBuf[:])
	if err := proto.CheckFrameLength(n, 1<<20); err != nil {
		return err
	}
	p.buf = append(p.buf[:0], lenBuf[:]...)
	p.buf = append(p.buf, make([]byte, n-proto.FrameLengthSize)...)
	if _, err := io.ReadFull(p.r, p.buf[proto.FrameLengthSize:]); err != nil {
		return err
	}
	h, body, err := proto.ParseResponseHeader(p.buf)
	switch {
	case err != nil:
		return err
	case h.CorrelationID != p.corr:
		return fmt.Errorf("response to request %d, want %d", h.CorrelationID, p.corr)
	case h.Error != proto.None:
		return h.Error
	}
	return resp.Decode(body)
}
