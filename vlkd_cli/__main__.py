from vlkd_cli.app import main

main()
