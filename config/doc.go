// Package config owns ringmq's server configuration: the TOML file, its
// defaults, its validation, and the per-topic overrides kept in the metadata
// store.
//
// Load reads a file over Default and validates the result; Parse does the
// same for bytes. DefaultTOML is the embedded, fully commented default file
// (the repository's config.toml is a copy of it, checked by a test). A
// Config that Load, Parse or Default returns has passed Validate; a Config
// changed afterwards (command-line overrides) must be validated again.
//
// Contract:
//
//   - Every setting lives in a table ([server], [reactor], [storage],
//     [topics], [log]); a key missing from the file keeps its default.
//   - A key this package does not know is an error that names it (a
//     *KeyError wrapping ErrUnknownKey); a value of the wrong type or out of
//     range is an error that names the key and the value as written
//     (`storage.flush = "sometimes": want "interval" or "sync"`, a *KeyError
//     wrapping ErrInvalid). A TOML syntax error wraps ErrSyntax and names the
//     line. Errors do not name the file; Load's caller gets it prefixed.
//   - Sizes are integers in bytes, "_ms" settings integers in milliseconds,
//     and durations Go duration strings ("500ms"); a bare integer is not a
//     duration.
//   - TopicConfig holds a topic's overrides of the storage defaults. Its
//     zero fields mean "not overridden"; Resolve fills them in. Its binary
//     encoding (AppendTopicConfig, ParseTopicConfig) is versioned and
//     persisted: see topic.go for the layout.
//
// Values are plain data: a Config or TopicConfig may be copied and read from
// any goroutine. The package holds no mutable state.
package config
