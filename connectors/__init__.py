"""All I/O with the outside world: portal drop, public feed, zone databases, ferry ledgers."""
