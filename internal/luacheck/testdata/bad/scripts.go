package bad

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// inlineCmd is a Go string, not a file.
var inlineCmd = redis.NewScript(`return 1`)

//go:embed lua/nocontract.lua
var noContractLua string

var noContractCmd = redis.NewScript(noContractLua)

//go:embed lua/quote.lua
var quoteLua string

// quoteCmd is built from two script files.
var quoteCmd = redis.NewScript(quoteLua + noContractLua)

//go:embed lua/unlisted.lua
var unlistedLua string

var unlistedCmd = redis.NewScript(unlistedLua)

//go:embed scripts.lua
var elsewhereLua string
