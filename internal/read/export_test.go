package read

// ChainTail lets the tests of package read_test, which append with package
// rita (package read cannot import it: rita imports read), tell a tail found
// by following expectations from one found by a read.
var ChainTail = chainTail
