// Package ring is ringmq's thin io_uring layer and the only importer of
// github.com/pawelgaczynski/giouring.
//
// # What it owns
//
// Ring setup and teardown, SQE preparation (every field, by hand), submission
// and waiting, completion dispatch, provided buffer rings for multishot
// receive (BufRing), the eventfd wake-up for ordinary goroutines (Waker), and
// a reusable gather list for sendmsg/writev (Msg). It knows nothing about
// messages, connections or files beyond their descriptors.
//
// # API
//
// A Ring's owner calls Prepare* to queue operations, each tagged with a
// 64-bit user data value, then SubmitAndWait, then ForEachCQE to receive
// (user data, result, flags) for every completion. Multishot operations,
// zero-copy sends and MSG_RING posts are ordinary completions read with
// HasMore, BufferID and IsNotif.
//
// # Concurrency
//
// A Ring, its BufRings and its Msgs are owned by one goroutine and are not
// safe for concurrent use. That goroutine must hold runtime.LockOSThread from
// before New until after Close: with SINGLE_ISSUER (which reactors ask for)
// the kernel refuses, as ErrNotIssuer, a submit or wait from any other
// thread. Other goroutines reach a ring only through a Waker (Wake is safe
// from any goroutine) or, from another ring, through PrepareMsgRing to Fd.
//
// # Keep-alive rule
//
// Memory named by an SQE (buffers, iovec arrays, msghdrs and what they point
// to) is the kernel's from Prepare until the operation's final completion
// (for PrepareSendZC and PrepareSendmsgZC: the data until the IsNotif
// completion, which Linux 6.18 posts even when the send failed; the msghdr
// and iovec array only until the first completion, since the kernel imports
// them when it issues the send). The caller must keep it
// reachable and untouched for that time, e.g. in its per-connection struct.
// It must not live on a goroutine stack, which moves when it grows: Prepare
// methods store the pointer they pass in the Ring, which makes the compiler
// put such memory on the heap (TestPrepareKeepsBuffersOffTheStack fails
// without it). The Go heap does not move objects, so reachability is enough.
// Exceptions that need no care from the caller:
//   - PrepareTimeout copies the timespec into a per-SQE slot of the Ring; the
//     kernel reads it during submission, before the slot can be reused.
//   - BufRing descriptors and buffers are mmap'd outside the Go heap and live
//     until BufRing.Close (or Ring.Close).
//   - Msg holds real pointers to its slices and its iovec array, so a
//     reachable Msg keeps what it describes reachable.
//
// Close a BufRing or Ring only after the operations using it have completed
// or been cancelled and reaped.
//
// # Kernel
//
// Requires IORING_FEAT_EXT_ARG and SUBMIT_STABLE (Linux 5.11); the operations
// need up to 6.0 (send_zc); PrepareSendmsgZC needs 6.1 and ZCReportUsage
// 6.2. New asks for SINGLE_ISSUER|DEFER_TASKRUN when
// told to, and drops flags one step at a time while the kernel answers
// EINVAL; SingleIssuer and DeferTaskrun report what was granted. With
// DEFER_TASKRUN, completions are posted only while the owner waits in
// SubmitAndWait. Little-endian hosts only (the eventfd counter, poll32
// events).
//
// # Errors
//
// Prepare methods cannot fail: if the SQ is full they submit first. If the SQ
// is still full the operation is dropped and ErrSQFull becomes a sticky error
// returned by every later Submit and SubmitAndWait; the owner must shut the
// ring down. EINTR, ETIME, EAGAIN and EBUSY from io_uring_enter are not
// errors (wait again). Operation errors arrive as negative results (-errno)
// in completions.
//
// # What is not used from giouring, and why
//
// giouring provides the mmap'd rings (QueueInitParams), GetSQE, Submit,
// SubmitAndWait[Timeout], ForEachCQE/CQAdvance and buffer ring
// registration. None of its SubmissionQueueEntry.Prepare* helpers is used:
// PrepareSendZC passes the address of the slice header instead of the data;
// PrepareTimeout, PrepareLinkTimeout and PrepareTimeoutRemove/Update pass a
// pointer to a pointer or to a stack temporary; and the shared prepareRW
// leaves OpcodeFlags, Addr3 and padding from the slot's previous use. Here
// every SQE is zeroed and each field set explicitly (prep.go), which
// TestPrepareFillsEverySQEField checks byte for byte on a reused, poisoned
// slot. Also avoided: its BufAndRing add/advance helpers (replaced by a
// field-by-field write that cannot clobber the shared tail), its
// PeekBatchCQE (it reads past the ready entries), its Params (unexported
// fields; mirrored in abi.go to set the CQ size) and its fallback timeout
// path for kernels without EXT_ARG (it uses the broken timeout helper; New
// rejects such kernels instead).
package ring
