"""`python -m kafkaproof ...` is the `kafkaproof` command."""

from kafkaproof.cli import main

raise SystemExit(main())
