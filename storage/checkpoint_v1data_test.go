package storage

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCheckpointWrittenByOldServer reads the recovery points a server
// wrote before the checkpoint had a golden file (testdata/v1data, stopped
// cleanly): each names the partition's last segment, the end of its data
// and the log end, and carries the running max timestamp of that segment.
func TestCheckpointWrittenByOldServer(t *testing.T) {
	root := filepath.Join("testdata", "v1data")
	type rec struct {
		offset uint64
		ts     int64
	}
	records := map[string][]rec{}
	f, err := os.Open(filepath.Join(root, "records.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for sc := bufio.NewScanner(f); sc.Scan(); {
		fs := strings.Fields(sc.Text())
		off, err1 := strconv.ParseUint(fs[1], 10, 64)
		ts, err2 := strconv.ParseInt(fs[2], 10, 64)
		if err1 != nil || err2 != nil {
			t.Fatalf("records.txt line %q", sc.Text())
		}
		records[fs[0]] = append(records[fs[0]], rec{off, ts})
	}
	for _, p := range []string{"0", "1"} {
		dir := filepath.Join(root, "datadir", "topics", "v1", p)
		c, found, err := readCheckpoint(dir)
		if err != nil || !found {
			t.Fatalf("partition %s: readCheckpoint: found %v, %v", p, found, err)
		}
		recs := records[p]
		if !c.Clean || c.RecoveryPoint != recs[len(recs)-1].offset+1 {
			t.Errorf("partition %s: %+v, want clean with recovery point %d", p, c, recs[len(recs)-1].offset+1)
		}
		logs, _ := filepath.Glob(filepath.Join(dir, "*"+logExt))
		last := logs[len(logs)-1]
		if want := segmentName(c.SegmentBase) + logExt; filepath.Base(last) != want {
			t.Errorf("partition %s: checkpoint segment %s, last segment file %s", p, want, last)
		}
		data, err := os.ReadFile(last)
		if err != nil {
			t.Fatal(err)
		}
		if c.SegmentPos <= 0 || c.SegmentPos >= int64(len(data)) ||
			len(bytes.Trim(data[c.SegmentPos:], "\x00")) != 0 {
			t.Errorf("partition %s: segment position %d is not the end of the data in %s", p, c.SegmentPos, last)
		}
		var maxTs int64
		for _, r := range recs {
			if r.offset >= c.SegmentBase {
				maxTs = max(maxTs, r.ts)
			}
		}
		if c.MaxTimestamp != maxTs {
			t.Errorf("partition %s: max timestamp %d, want %d", p, c.MaxTimestamp, maxTs)
		}
	}
}
