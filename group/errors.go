package group

import "errors"

// Refusals. Each is returned wrapped with the group, member or partition it
// concerns (test with errors.Is); the server maps them to wire error codes.
var (
	ErrInvalidGroupName = errors.New("group: invalid group name")
	ErrInvalidTopic     = errors.New("group: invalid topic name")
	ErrInvalidRequest   = errors.New("group: invalid request")
	ErrUnknownGroup     = errors.New("group: unknown group")
	ErrUnknownMember    = errors.New("group: unknown member; join again")
	ErrExclusiveHeld    = errors.New("group: exclusive subscription is held by another member")
	ErrTypeMismatch     = errors.New("group: subscription type differs from the group's")
	ErrFenced           = errors.New("group: member does not own the partition in this epoch")
	ErrGroupActive      = errors.New("group: group has active members")
	ErrTooManyGroups    = errors.New("group: too many groups")
	ErrTooManyMembers   = errors.New("group: too many members in the group")
	// ErrNotHeld: an ack, nack or reject of a record the member does not
	// hold (never handed to it, or acquired by another member since).
	ErrNotHeld = errors.New("group: record not held by this member")
)

// Record decoding. ErrTruncated marks a frame cut short (a torn tail: the
// reader truncates there and carries on); ErrCorrupt anything else wrong
// inside a frame (report it, never serve it).
var (
	ErrTruncated = errors.New("group: truncated record")
	ErrCorrupt   = errors.New("group: corrupt record")
	ErrVersion   = errors.New("group: unknown record version")
)
