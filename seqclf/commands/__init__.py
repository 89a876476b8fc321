"""The ``seqclf`` subcommands, one module each: ``add_parser(sub)`` declares its options and
``run(args, argv)`` does it and returns the exit status (``seqclf.cli`` dispatches)."""
