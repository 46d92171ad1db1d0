// Command hello is the example program buildguard guards in the demo.
package main

import "fmt"

func main() {
	fmt.Println("hello from a build no compromised builder touched")
}
