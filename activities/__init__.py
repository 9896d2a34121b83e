"""Activities: everything Redress does that touches the outside world (rules files, HTTP peers, the outbox)."""
