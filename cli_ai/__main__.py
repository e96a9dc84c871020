from cli_ai.cli import main

main()
