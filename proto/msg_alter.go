package proto

// AlterTopic and AddPartitions: changing a topic after its creation.

// AlterTopicRequest changes a topic's configuration overrides: each entry
// sets its key (validated as CreateTopic's), and an empty value removes
// the override so the server default applies again. Keys not named keep
// their value.
type AlterTopicRequest struct {
	Name    string
	Configs []Config
}

// AlterTopicResponse carries the outcome and, on failure, a message that
// names the offending key.
type AlterTopicResponse struct {
	Error   ErrorCode
	Message string
}

// APIKey implements Request.
func (*AlterTopicRequest) APIKey() APIKey { return APIAlterTopic }

// AppendTo implements Message.
func (r *AlterTopicRequest) AppendTo(dst []byte) []byte {
	dst = appendString16(dst, r.Name)
	return appendConfigs(dst, r.Configs)
}

// Decode implements Message.
func (r *AlterTopicRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Name = d.String16()
	r.Configs = decodeConfigs(&d, r.Configs)
	return d.End()
}

// AppendTo implements Message.
func (r *AlterTopicResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	return appendString16(dst, r.Message)
}

// Decode implements Message.
func (r *AlterTopicResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.Message = d.String16()
	return d.End()
}

// AddPartitionsRequest grows a topic to Partitions partitions in all (as
// Kafka's CreatePartitions: the new total, so a retried request cannot add
// twice). Existing partitions keep their data and their shard.
type AddPartitionsRequest struct {
	Name       string
	Partitions uint32
}

// AddPartitionsResponse carries the outcome and, on failure, a message.
type AddPartitionsResponse struct {
	Error   ErrorCode
	Message string
}

// APIKey implements Request.
func (*AddPartitionsRequest) APIKey() APIKey { return APIAddPartitions }

// AppendTo implements Message.
func (r *AddPartitionsRequest) AppendTo(dst []byte) []byte {
	dst = appendString16(dst, r.Name)
	return appendU32(dst, r.Partitions)
}

// Decode implements Message.
func (r *AddPartitionsRequest) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Name = d.String16()
	r.Partitions = d.U32()
	return d.End()
}

// AppendTo implements Message.
func (r *AddPartitionsResponse) AppendTo(dst []byte) []byte {
	dst = appendU16(dst, uint16(r.Error))
	return appendString16(dst, r.Message)
}

// Decode implements Message.
func (r *AddPartitionsResponse) Decode(b []byte) error {
	d := NewDecoder(b)
	r.Error = ErrorCode(d.U16())
	r.Message = d.String16()
	return d.End()
}
