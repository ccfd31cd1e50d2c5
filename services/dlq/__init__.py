"""`hsqbo dlq list|show|replay|purge`: the dead letters — work hsqbo gave up on — read, replayed once their cause is
fixed, or purged. A thin command line over `shared.deadletters`, which the status page uses too."""

from services.dlq._cli import configure_parser, main

__all__ = ["configure_parser", "main"]
