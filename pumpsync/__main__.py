from pumpsync.cli import main

main()
