package doctor

import "os/user"

// currentUser is the effective user's name, "" when it cannot be found.
func currentUser() string {
	u, err := user.Current()
	if err != nil {
		return ""
	}
	return u.Username
}
