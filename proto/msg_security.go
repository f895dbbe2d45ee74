package proto

// Security messages: SASL authentication (SaslHandshake, then
// SaslAuthenticate rounds; the only requests besides Hello served before a
// connection has authenticated when server.sasl is on) and the
// administration of users and ACLs.

// SASL mechanism names, as clients send them (Kafka's names).
const (
	MechanismScramSHA256 = "SCRAM-SHA-256"
	MechanismScramSHA512 = "SCRAM-SHA-512"
)

// SaslHandshakeRequest names the mechanism the client will use.
type SaslHandshakeRequest struct {
	Mechanism string
}

// SaslHandshakeResponse lists the mechanisms the server has enabled. Error
// is SASL_AUTHENTICATION_FAILED when the requested one is not among them
// (none: SASL is off on the server).
type SaslHandshakeResponse struct {
	Error      ErrorCode
	Mechanisms []string
}

// SaslAuthenticateRequest carries one client message of the mechanism's
// exchange (for SCRAM: client-first, then client-final).
type SaslAuthenticateRequest struct {
	Auth []byte
}

// SaslAuthenticateResponse carries the server's message of the exchange.
// On Error SASL_AUTHENTICATION_FAILED Message says why (the same words for
// an unknown user and a wrong password) and the server closes the
// connection.
type SaslAuthenticateResponse struct {
	Error   ErrorCode
	Auth    []byte
	Message string
}

// AlterUserRequest creates or replaces one SCRAM credential of a user, or
// with Delete removes the user. The client salts the password: only the
// salt, the iteration count and the derived keys travel and are stored.
type AlterUserRequest struct {
	Delete     bool
	Name       string
	Mechanism  string
	Salt       []byte
	Iterations uint32
	StoredKey  []byte
	ServerKey  []byte
}

// AlterUserResponse answers AlterUser; Message explains a refusal.
type AlterUserResponse struct {
	Error   ErrorCode
	Message string
}

// ListUsersRequest asks for every user. It has no fields.
type ListUsersRequest struct{}

// ListUsersResponse lists users by name with their mechanisms (never a key).
type ListUsersResponse struct {
	Users []UserInfo
}

// UserInfo is one user and the SCRAM mechanisms it has credentials for.
type UserInfo struct {
	Name       string
	Mechanisms []UserMechanism
}

// UserMechanism is one credential of a user.
type UserMechanism struct {
	Mechanism  string
	Iterations uint32
}

// ACL request operations (ACLsRequest.Op). Wire values: never renumber.
const (
	ACLList   uint8 = 0
	ACLCreate uint8 = 1
	ACLDelete uint8 = 2
)

// ACLsRequest lists every ACL entry (ACLList), adds Entries (ACLCreate:
// entries present already are kept once) or removes those equal to Entries
// (ACLDelete).
type ACLsRequest struct {
	Op      uint8
	Entries []ACLEntry
}

// ACLEntry is one rule; the enum values are acl package's wire values.
type ACLEntry struct {
	Principal  string
	Resource   uint8
	Pattern    uint8
	Name       string
	Operation  uint8
	Permission uint8
}

// ACLsResponse answers ACLs: for ACLList every entry, for ACLDelete the
// entries removed, for ACLCreate the entries added. Message explains a
// refusal.
type ACLsResponse struct {
	Error   ErrorCode
	Message string
	Entries []ACLEntry
}

const (
	userInfoSize      = 2 + 4
	userMechanismSize = 2 + 4
	aclEntrySize      = 2 + 1 + 1 + 2 + 1 + 1
	stringSize        = 2
)

// APIKey implements Request.
func (*SaslHandshakeRequest) APIKey() APIKey { return APISaslHandshake }

// AppendTo implements Message.
func (r *SaslHandshakeRequest) AppendTo(dst []byte) []byte { return appendString16(dst, r.Mechanism) }

// Decode implements Message.
func (r *SaslHandshakeRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Mechanism = d.String16()
	return d.End()
}

// AppendTo implements Message.
func (r *SaslHandshakeResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	dst = appendArrayLen(dst, len(r.Mechanisms))
	for _, m := range r.Mechanisms {
		dst = appendString16(dst, m)
	}
	return dst
}

// Decode implements Message.
func (r *SaslHandshakeResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.Mechanisms = grow(r.Mechanisms, d.ArrayLen(stringSize))
	for i := range r.Mechanisms {
		r.Mechanisms[i] = d.String16()
	}
	if len(r.Mechanisms) == 0 {
		r.Mechanisms = nil
	}
	return d.End()
}

// APIKey implements Request.
func (*SaslAuthenticateRequest) APIKey() APIKey { return APISaslAuthenticate }

// AppendTo implements Message.
func (r *SaslAuthenticateRequest) AppendTo(dst []byte) []byte { return appendBytes32(dst, r.Auth) }

// Decode implements Message. Auth aliases b.
func (r *SaslAuthenticateRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Auth = nonEmpty(d.Bytes32())
	return d.End()
}

// AppendTo implements Message.
func (r *SaslAuthenticateResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	dst = appendBytes32(dst, r.Auth)
	return appendString16(dst, r.Message)
}

// Decode implements Message. Auth aliases b.
func (r *SaslAuthenticateResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.Auth = nonEmpty(d.Bytes32())
	r.Message = d.String16()
	return d.End()
}

// APIKey implements Request.
func (*AlterUserRequest) APIKey() APIKey { return APIAlterUser }

// AppendTo implements Message.
func (r *AlterUserRequest) AppendTo(dst []byte) []byte {
	dst = appendBool(dst, r.Delete)
	dst = appendString16(dst, r.Name)
	dst = appendString16(dst, r.Mechanism)
	dst = appendBytes16(dst, r.Salt)
	dst = appendU32(dst, r.Iterations)
	dst = appendBytes16(dst, r.StoredKey)
	return appendBytes16(dst, r.ServerKey)
}

// Decode implements Message. The byte fields are copies.
func (r *AlterUserRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Delete = d.Bool()
	r.Name = d.String16()
	r.Mechanism = d.String16()
	r.Salt = cloneNonEmpty(d.Bytes16())
	r.Iterations = d.U32()
	r.StoredKey = cloneNonEmpty(d.Bytes16())
	r.ServerKey = cloneNonEmpty(d.Bytes16())
	return d.End()
}

// AppendTo implements Message.
func (r *AlterUserResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	return appendString16(dst, r.Message)
}

// Decode implements Message.
func (r *AlterUserResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.Message = d.String16()
	return d.End()
}

// APIKey implements Request.
func (*ListUsersRequest) APIKey() APIKey { return APIListUsers }

// AppendTo implements Message.
func (*ListUsersRequest) AppendTo(dst []byte) []byte { return dst }

// Decode implements Message.
func (*ListUsersRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	return d.End()
}

// AppendTo implements Message.
func (r *ListUsersResponse) AppendTo(dst []byte) []byte {
	dst = appendArrayLen(dst, len(r.Users))
	for _, u := range r.Users {
		dst = appendString16(dst, u.Name)
		dst = appendArrayLen(dst, len(u.Mechanisms))
		for _, m := range u.Mechanisms {
			dst = appendString16(dst, m.Mechanism)
			dst = appendU32(dst, m.Iterations)
		}
	}
	return dst
}

// Decode implements Message.
func (r *ListUsersResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Users = grow(r.Users, d.ArrayLen(userInfoSize))
	for i := range r.Users {
		u := &r.Users[i]
		u.Name = d.String16()
		u.Mechanisms = grow(u.Mechanisms, d.ArrayLen(userMechanismSize))
		for j := range u.Mechanisms {
			u.Mechanisms[j].Mechanism = d.String16()
			u.Mechanisms[j].Iterations = d.U32()
		}
		if len(u.Mechanisms) == 0 {
			u.Mechanisms = nil
		}
	}
	if len(r.Users) == 0 {
		r.Users = nil
	}
	return d.End()
}

// APIKey implements Request.
func (*ACLsRequest) APIKey() APIKey { return APIACLs }

// AppendTo implements Message.
func (r *ACLsRequest) AppendTo(dst []byte) []byte {
	dst = appendU8(dst, r.Op)
	return appendACLEntries(dst, r.Entries)
}

// Decode implements Message.
func (r *ACLsRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Op = d.U8()
	r.Entries = d.aclEntries(r.Entries)
	return d.End()
}

// AppendTo implements Message.
func (r *ACLsResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	dst = appendString16(dst, r.Message)
	return appendACLEntries(dst, r.Entries)
}

// Decode implements Message.
func (r *ACLsResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.Message = d.String16()
	r.Entries = d.aclEntries(r.Entries)
	return d.End()
}

func appendACLEntries(dst []byte, es []ACLEntry) []byte {
	dst = appendArrayLen(dst, len(es))
	for _, e := range es {
		dst = appendString16(dst, e.Principal)
		dst = append(dst, e.Resource, e.Pattern)
		dst = appendString16(dst, e.Name)
		dst = append(dst, e.Operation, e.Permission)
	}
	return dst
}

func (d *Decoder) aclEntries(es []ACLEntry) []ACLEntry {
	es = grow(es, d.ArrayLen(aclEntrySize))
	for i := range es {
		e := &es[i]
		e.Principal = d.String16()
		e.Resource, e.Pattern = d.U8(), d.U8()
		e.Name = d.String16()
		e.Operation, e.Permission = d.U8(), d.U8()
	}
	if len(es) == 0 {
		return nil
	}
	return es
}

// nonEmpty returns b, or nil when it is empty (so that a decoded empty
// field equals an unset one).
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func cloneNonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}
