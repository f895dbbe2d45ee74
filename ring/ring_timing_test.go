package ring

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkSend compares sending over loopback TCP through the ring (send,
// and send_zc which waits for its notification) with the baseline, a plain
// net.Conn Write, in the same run. One send is in flight at a time in every
// variant, as with a blocking Write. A goroutine drains the receiving side.
func BenchmarkSend(b *testing.B) {
	for _, size := range []int{64 << 10, 1 << 20} {
		name := fmt.Sprintf("%dKiB", size>>10)
		b.Run("net.Conn/"+name, func(b *testing.B) { benchNetSend(b, size) })
		b.Run("ring/"+name, func(b *testing.B) { benchRingSend(b, size, false, 0) })
		b.Run("ring_zc/"+name, func(b *testing.B) { benchRingSend(b, size, true, 0) })
		b.Run("ring_zc_report/"+name, func(b *testing.B) { benchRingSend(b, size, true, ZCReportUsage) })
	}
}

// drainServer accepts one connection and counts what it reads until EOF.
func drainServer(b *testing.B) (port int, total <-chan int64) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	out := make(chan int64, 1)
	buf := make([]byte, 1<<20) // allocated here, not inside the timed region
	go func() {
		defer ln.Close()
		c, err := ln.Accept()
		if err != nil {
			out <- -1
			return
		}
		defer c.Close()
		n, _ := io.CopyBuffer(io.Discard, c, buf)
		out <- n
	}()
	return ln.Addr().(*net.TCPAddr).Port, out
}

func benchNetSend(b *testing.B, size int) {
	port, total := drainServer(b)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		b.Fatal(err)
	}
	buf := pattern(size, 0)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	if n := <-total; n != int64(b.N)*int64(size) {
		b.Fatalf("server got %d bytes, want %d", n, int64(b.N)*int64(size))
	}
}

func benchRingSend(b *testing.B, size int, zc bool, zcFlags ZCFlags) {
	defer runtime.UnlockOSThread()
	r := newTestRing(b, 8)
	port, total := drainServer(b)
	fd := dialTCP(b, port)
	buf := pattern(size, 0)
	var sent int64
	var notifs int
	handle := func(_ uint64, res int32, flags uint32) {
		if IsNotif(flags) {
			notifs++
			return
		}
		if res != int32(size) {
			b.Fatalf("send res %d, want %d", res, size)
		}
		sent += int64(res)
	}
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		want := 1
		if zc {
			want = 2 // the buffer may be reused only after the notification
			r.PrepareSendZC(fd, buf, unix.MSG_WAITALL, zcFlags, 1)
		} else {
			r.PrepareSend(fd, buf, unix.MSG_WAITALL, 1)
		}
		for n := 0; n < want; {
			if err := r.SubmitAndWait(uint32(want-n), 0); err != nil {
				b.Fatal(err)
			}
			n += r.ForEachCQE(handle)
		}
	}
	b.StopTimer()
	_ = unix.Shutdown(fd, unix.SHUT_WR)
	if n := <-total; n != sent || sent != int64(b.N)*int64(size) {
		b.Fatalf("server got %d bytes, ring sent %d, want %d", n, sent, int64(b.N)*int64(size))
	}
	if zc && notifs != b.N {
		b.Fatalf("%d notifications for %d sends", notifs, b.N)
	}
}
