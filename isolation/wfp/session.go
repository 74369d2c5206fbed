package wfp

// Session is the seam between the enforcer and the Windows Filtering
// Platform: the few engine operations cordon needs. On Windows it is
// implemented over github.com/tailscale/wf (see OpenSession); tests use an
// in-memory fake. A Session is used by one goroutine at a time (the
// Enforcer serializes its calls).
//
// Add and Delete calls made between Begin and Commit take effect together
// at Commit, or not at all after Abort: this is what makes Apply and Clear
// atomic.
type Session interface {
	// Begin starts a read-write transaction.
	Begin() error
	// Commit commits the transaction.
	Commit() error
	// Abort rolls the transaction back.
	Abort() error

	// Providers lists every provider of the engine.
	Providers() ([]Provider, error)
	// AddProvider adds a provider; it fails if one with the same ID exists.
	AddProvider(p Provider) error
	// DeleteProvider deletes a provider that owns no sublayer or filter.
	DeleteProvider(id GUID) error

	// Sublayers lists the sublayers owned by provider, or every sublayer
	// when provider is the zero GUID.
	Sublayers(provider GUID) ([]Sublayer, error)
	// AddSublayer adds a sublayer; it fails if one with the same ID exists.
	AddSublayer(s Sublayer) error
	// DeleteSublayer deletes a sublayer that holds no filter.
	DeleteSublayer(id GUID) error

	// Filters lists the filters in sublayer, as the engine holds them.
	Filters(sublayer GUID) ([]Filter, error)
	// AddFilter adds a filter; it fails if one with the same ID exists.
	AddFilter(f Filter) error
	// DeleteFilter deletes the filter with key id.
	DeleteFilter(id GUID) error

	// AppID returns the WFP application id of the executable at path
	// (FwpmGetAppIdFromFileName0: its device path, lower case).
	AppID(path string) (string, error)

	// Close ends the session. Persistent objects stay.
	Close() error
}

// Provider is a WFP provider: the owner of cordon's sublayer and filters.
type Provider struct {
	ID          GUID
	Name        string
	Description string
	Persistent  bool
}

// Sublayer is a WFP sublayer. Each sublayer reaches its own decision;
// across sublayers a block overrides a permit unless the permit is hard.
type Sublayer struct {
	ID          GUID
	Provider    GUID
	Name        string
	Description string
	Persistent  bool
	Weight      uint16
}
