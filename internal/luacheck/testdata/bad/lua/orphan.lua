-- wrong name: embedded by nothing.
return 1
