from connector.entry import run

run()
