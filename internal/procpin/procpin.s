// Empty: its presence lets procpin.go declare the linknamed functions without bodies.
