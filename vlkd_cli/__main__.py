from vlkd_cli.app import run

run()
