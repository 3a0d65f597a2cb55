from mnv4_postmortem.cli import main

main()
