from draftdl.cli.main import main

main()
