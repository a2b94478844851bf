from harness.commands.main import main

main()
