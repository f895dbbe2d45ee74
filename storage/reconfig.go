package storage

// Reconfigure replaces the limits of an open log (a topic's configuration
// was altered): retention applies from the next EnforceRetention, the
// segment size from the next roll, preallocation to the next segment
// prepared. Like every other method it runs on the owner's goroutine; it
// does no I/O.
func (l *Log) Reconfigure(cfg LogConfig) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.cfg = cfg
	l.reconfigured = true
	return nil
}
