from ti_workflow.cli.app import main

main()
