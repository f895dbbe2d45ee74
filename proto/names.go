package proto

// MaxNameLen is the longest topic or group name: topic names become
// directory names, so they stay well below file system limits.
const MaxNameLen = 249

// ValidName reports whether name is a valid topic or group name: 1 to
// MaxNameLen bytes of [A-Za-z0-9._-], and not "." or "..". The server
// answers InvalidTopicName or InvalidGroupName otherwise.
func ValidName(name []byte) bool {
	if len(name) == 0 || len(name) > MaxNameLen || string(name) == "." || string(name) == ".." {
		return false
	}
	for _, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}
