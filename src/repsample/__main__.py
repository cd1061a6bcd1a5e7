from repsample.cli import main

main()
