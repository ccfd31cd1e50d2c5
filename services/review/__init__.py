"""`hsqbo review list|show|resolve`: the records matching never guessed for. A record whose email, SKU or DocNumber
matched several records on the other side (or whose match is shared) needs review: it is linked to none and nothing
is written until an operator picks a candidate, creates a new record on the other side, or excludes it. Resolving
records the decision on the record's link and queues the record, so a worker applies it."""

from services.review._cli import configure_parser, main

__all__ = ["configure_parser", "main"]
