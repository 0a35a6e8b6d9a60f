from blippsync.cli import main

main()
