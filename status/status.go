// Package status serves the broker's status page on the metrics listener:
// GET / is one HTML page embedded in the binary (no external assets) whose
// script fetches GET /status.json every two seconds and draws the cluster
// nodes, the topics and partitions with their sizes and rates, and the
// consumer groups with their lag. Rates are computed by the page from two
// successive snapshots, so the server keeps no history.
//
// The package owns the Snapshot types (the JSON document) and the HTTP
// handlers; the broker fills a Snapshot on demand. Handlers are safe for
// concurrent use if the snapshot function is.
package status

import (
	_ "embed"
	"encoding/json"
	"net/http"
)

// Snapshot is the document at /status.json.
type Snapshot struct {
	TimeMs int64   `json:"time_ms"` // when it was taken, Unix milliseconds
	Nodes  []Node  `json:"nodes"`   // the cluster; one node when not clustered
	Topics []Topic `json:"topics"`  // sorted by name
	Groups []Group `json:"groups"`  // sorted by group, topic, partition
}

// Node is one broker of the cluster.
type Node struct {
	ID          int    `json:"id"`
	Addr        string `json:"addr"`
	Role        string `json:"role"` // "standalone" until replication exists
	Self        bool   `json:"self"` // the node serving this page
	Reactors    int    `json:"reactors"`
	StartedMs   int64  `json:"started_ms"`
	Connections int64  `json:"connections"`
}

// Topic is one topic with its totals since the server started.
type Topic struct {
	Name             string      `json:"name"`
	Messages         uint64      `json:"messages"` // in the log: sum of log end - log start
	Bytes            int64       `json:"bytes"`    // on disk
	ProducedMessages uint64      `json:"produced_messages"`
	ProducedBytes    uint64      `json:"produced_bytes"`
	FetchedMessages  uint64      `json:"fetched_messages"`
	FetchedBytes     uint64      `json:"fetched_bytes"`
	Partitions       []Partition `json:"partitions"`
}

// Partition is one partition of a topic.
type Partition struct {
	ID       uint32 `json:"id"`
	Shard    int    `json:"shard"` // owning reactor
	LogStart uint64 `json:"log_start"`
	LogEnd   uint64 `json:"log_end"`
	Bytes    int64  `json:"bytes"`
}

// Group is a consumer group's position in one partition.
type Group struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Committed int64  `json:"committed"` // -1: none yet
	LogEnd    int64  `json:"log_end"`
	Lag       int64  `json:"lag"`
}

//go:embed page.html
var page []byte

// PageHandler serves the status page (register it for "GET /{$}").
func PageHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'")
		w.Write(page)
	})
}

// JSONHandler serves snapshot() as JSON (register it for
// "GET /status.json").
func JSONHandler(snapshot func() Snapshot) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		json.NewEncoder(w).Encode(snapshot())
	})
}
