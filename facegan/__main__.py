from facegan.cli import main

main()
