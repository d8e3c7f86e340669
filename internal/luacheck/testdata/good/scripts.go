package good

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

//go:embed lua/lib.lua
var luaLib string

//go:embed lua/one.lua
var oneLua string

// oneCmd is documented at the top of lua/one.lua.
var oneCmd = redis.NewScript(luaLib + oneLua)

var (
	//go:embed lua/two.lua
	twoLua string

	twoCmd = redis.NewScript(twoLua)
)
