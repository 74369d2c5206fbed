package logic

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/cordonsec/cordon/ioc"
)

// Field is one attribute of an ioc.Event that conditions test. Each names
// the event field it reads (String returns its JSON path) and the form its
// values are compared in: digests in lower case; paths, URLs, registry keys
// and mutexes as ioc.Normalize puts them; addresses unmapped; domain names
// in lower case without trailing dot, internationalized ones in their
// IDNA ASCII form; numbers in decimal.
//
// DNSAnswer has a value per answer, and the registry-key fields (RegKey,
// RegKeyPath, RegPath) one per name Windows reports the event's key under:
// its own and those ioc.RegistryKeyViews returns (a key under
// HKEY_USERS\<SID> is also the user's HKEY_CURRENT_USER key, one under
// Software\Classes or <SID>_Classes also an HKEY_CLASSES_ROOT key), as
// the atomic registry-key sets match it. A condition on such a field holds
// if one of its values satisfies it; negated, if none does.
type Field uint8

// The fields.
const (
	FileMD5        Field = iota + 1 // file.md5
	FileSHA1                        // file.sha1
	FileSHA256                      // file.sha256
	FileSHA512                      // file.sha512
	FilePath                        // file.path: the full path
	FileDir                         // the directory of file.path
	FileName                        // file.name, or the last element of file.path
	FileExt                         // the extension of FileName, without the dot
	FileSize                        // file.size (number; absent when 0, as the event omits it)
	ProcName                        // process.name, or the last element of process.path
	ProcPath                        // process.path
	ProcCmdLine                     // process.command_line
	ProcParentName                  // process.parent_name
	ProcSHA256                      // process.sha256
	ProcPID                         // process.pid (number)
	NetProtocol                     // network.protocol, lower case
	NetLocalAddr                    // network.local_address
	NetLocalPort                    // network.local_port (number)
	NetRemoteAddr                   // network.remote_address
	NetRemotePort                   // network.remote_port (number)
	DNSQuery                        // dns.query
	DNSAnswer                       // each of dns.answers (addresses or names)
	HTTPURL                         // http.url
	HTTPHost                        // the host of http.url (a name or an address)
	HTTPMethod                      // http.method, upper case
	RegKey                          // registry.key, with its hive, and its other views
	RegKeyPath                      // registry.key, and its other views, without the hive
	RegValueName                    // registry.value_name
	RegPath                         // registry.key, and its other views, joined with registry.value_name
	RegData                         // registry.data
	MutexName                       // mutex.name
	ProcDir                         // the directory of process.path
	HTTPURI                         // the path and query of http.url ("/a/b?c=d")
	ServiceName                     // the service a registry.key under ...\Services\<name> configures

	fieldEnd
)

type fieldForm uint8

const (
	formText fieldForm = iota
	formHash
	formPath
	formNumber
	formAddr
	formDomain
	formHostOrAddr
	formURL
	formRegistry
	formKeyPath
	formMutex
	formLower
	formUpper
	formDir
)

var fieldInfo = [fieldEnd]struct {
	name string
	form fieldForm
}{
	FileMD5: {"file.md5", formHash}, FileSHA1: {"file.sha1", formHash}, FileSHA256: {"file.sha256", formHash},
	FileSHA512: {"file.sha512", formHash}, FilePath: {"file.path", formPath}, FileDir: {"file.path", formDir},
	FileName: {"file.name", formText}, FileExt: {"file.name", formText}, FileSize: {"file.size", formNumber},
	ProcName: {"process.name", formText}, ProcPath: {"process.path", formPath}, ProcCmdLine: {"process.command_line", formText},
	ProcParentName: {"process.parent_name", formText}, ProcSHA256: {"process.sha256", formHash}, ProcPID: {"process.pid", formNumber},
	NetProtocol: {"network.protocol", formLower}, NetLocalAddr: {"network.local_address", formAddr},
	NetLocalPort: {"network.local_port", formNumber}, NetRemoteAddr: {"network.remote_address", formAddr},
	NetRemotePort: {"network.remote_port", formNumber}, DNSQuery: {"dns.query", formDomain},
	DNSAnswer: {"dns.answers", formHostOrAddr}, HTTPURL: {"http.url", formURL}, HTTPHost: {"http.url", formHostOrAddr},
	HTTPMethod: {"http.method", formUpper}, RegKey: {"registry.key", formRegistry}, RegKeyPath: {"registry.key", formKeyPath},
	RegValueName: {"registry.value_name", formText}, RegPath: {"registry.value_name", formRegistry},
	RegData: {"registry.data", formText}, MutexName: {"mutex.name", formMutex},
	ProcDir: {"process.path", formDir}, HTTPURI: {"http.url", formText}, ServiceName: {"registry.key", formText},
}

// Valid reports whether f is a declared field.
func (f Field) Valid() bool { return f >= FileMD5 && f < fieldEnd }

// String returns the JSON path of the event field f reads.
func (f Field) String() string {
	if !f.Valid() {
		return "field(" + strconv.Itoa(int(f)) + ")"
	}
	return fieldInfo[f].name
}

// Numeric reports whether f holds numbers.
func (f Field) Numeric() bool { return f.Valid() && fieldInfo[f].form == formNumber }

// Address reports whether f may hold IP addresses.
func (f Field) Address() bool {
	if !f.Valid() {
		return false
	}
	switch fieldInfo[f].form {
	case formAddr, formHostOrAddr:
		return true
	}
	return false
}

// Normalize returns v in the form f's values are compared in. A value that
// is not of the field's form (a path that is not one, a URL without
// scheme) is returned trimmed and otherwise unchanged.
func (f Field) Normalize(v string) string {
	v = strings.TrimSpace(v)
	if !f.Valid() || v == "" {
		return v
	}
	switch fieldInfo[f].form {
	case formHash, formLower:
		return strings.ToLower(v)
	case formUpper:
		return strings.ToUpper(v)
	case formPath:
		if n, err := ioc.Normalize(ioc.KindFilePath, v); err == nil {
			return n
		}
	case formNumber:
		if n, err := strconv.ParseInt(v, 0, 64); err == nil {
			return strconv.FormatInt(n, 10)
		}
	case formAddr:
		if a, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
			return a.WithZone("").Unmap().String()
		}
	case formDomain:
		return domainName(v)
	case formHostOrAddr:
		if a, err := netip.ParseAddr(strings.Trim(v, "[]")); err == nil {
			return a.WithZone("").Unmap().String()
		}
		return domainName(v)
	case formURL:
		if n, err := ioc.Normalize(ioc.KindURL, v); err == nil {
			return n
		}
	case formRegistry:
		if n, err := ioc.Normalize(ioc.KindRegistryKey, v); err == nil {
			return n
		}
		return strings.ToLower(v)
	case formKeyPath:
		k := strings.ToLower(strings.Trim(v, `\`))
		if n, err := ioc.Normalize(ioc.KindRegistryKey, v); err == nil {
			if _, rest, ok := strings.Cut(n, `\`); ok {
				return rest
			}
			return ""
		}
		return k
	case formDir:
		// Without drive letter and outer separators: `C:\Windows\` and
		// "windows" are the same directory.
		if n, err := ioc.Normalize(ioc.KindFilePath, v); err == nil {
			v = n
		}
		if len(v) >= 2 && v[1] == ':' {
			v = v[2:]
		}
		return strings.Trim(v, `/\`)
	case formMutex:
		if n, err := ioc.Normalize(ioc.KindMutex, v); err == nil {
			return n
		}
	}
	if f == FileExt {
		return strings.TrimPrefix(v, ".")
	}
	return v
}

// domainName returns the host name v in lower case without trailing dot
// and, when it is not ASCII, in its IDNA ASCII form as ioc.Normalize puts
// it (so "BÜCHER.example" and "xn--bcher-kva.example" are one name, as
// they are in the host of a normalized URL and in the atomic sets). A
// name that is not a valid internationalized one is only lower-cased.
func domainName(v string) string {
	for i := 0; i < len(v); i++ {
		if v[i] >= 0x80 {
			if n, err := ioc.Normalize(ioc.KindHostname, v); err == nil {
				return n
			}
			break
		}
	}
	return strings.ToLower(strings.TrimSuffix(v, "."))
}

// expandHive returns a partial value of a registry field (the start of a
// key, for prefix, substring and LIKE tests) with a leading hive
// abbreviation in the long form keys are normalized to: `HKLM\Software`
// becomes `hkey_local_machine\Software`. Other values are returned as
// they are.
func (f Field) expandHive(v string) string {
	if !f.Valid() || fieldInfo[f].form != formRegistry {
		return v
	}
	hive, rest, found := strings.Cut(v, `\`)
	long, err := ioc.Normalize(ioc.KindRegistryKey, hive)
	if err != nil || strings.ContainsAny(hive, "%_*?") {
		return v
	}
	if found {
		return long + `\` + rest
	}
	return long
}

// observed holds the normalized values of the fields of one event.
type observed struct {
	vals [fieldEnd]string
	has  [fieldEnd]bool
	// answers are the values of DNSAnswer.
	answers []string
	// views are, for a registry key with other views, the values of
	// RegKey, RegKeyPath and RegPath (see regViews): the event's own
	// first (vals holds it too), then those of the other views. They are
	// nil for a key without other views.
	views [3][]string
}

// regViews returns the index in observed.views of a registry-key field.
func regViews(f Field) (int, bool) {
	switch f {
	case RegKey:
		return 0, true
	case RegKeyPath:
		return 1, true
	case RegPath:
		return 2, true
	}
	return 0, false
}

func (o *observed) set(f Field, v string) {
	if v = strings.TrimSpace(v); v != "" {
		o.vals[f], o.has[f] = f.Normalize(v), true
	}
}

// host sets a host name (or address) field. See hostValue.
func (o *observed) host(f Field, v string) {
	if strings.TrimSpace(v) != "" {
		o.vals[f], o.has[f] = hostValue(f, v), true
	}
}

// hostValue returns an observed host name or address in f's form. One
// with white space around it, or an address with a trailing dot, is no
// host name: it is kept lower-cased as it is, so that it equals no name
// or address (as in the atomic sets), while substring and pattern tests
// still see it.
func hostValue(f Field, v string) string {
	if t := strings.TrimSpace(v); t != v {
		return strings.ToLower(v)
	}
	if t, ok := strings.CutSuffix(v, "."); ok {
		if _, err := netip.ParseAddr(strings.Trim(t, "[]")); err == nil {
			return strings.ToLower(v)
		}
	}
	return f.Normalize(v)
}

func (o *observed) num(f Field, n int64, present bool) {
	if present {
		o.vals[f], o.has[f] = strconv.FormatInt(n, 10), true
	}
}

// present reports whether the event has field f.
func (o *observed) present(f Field) bool {
	if f == DNSAnswer {
		return len(o.answers) > 0
	}
	return o.has[f]
}

// values returns the values of f: one, except for DNSAnswer and for the
// registry-key fields of a key with other views, whose first value is the
// event's own. The caller must not change them.
func (o *observed) values(f Field) []string {
	if f == DNSAnswer {
		return o.answers
	}
	if !o.has[f] {
		return nil
	}
	if i, ok := regViews(f); ok && o.views[i] != nil {
		return o.views[i]
	}
	return o.vals[f : f+1 : f+1]
}

// registryViews sets the values of RegKey, RegKeyPath and RegPath under
// the other views of the event's key (ioc.RegistryKeyViews), after its
// own; a path joined with valueName gets the views of its key part.
func (o *observed) registryViews(valueName string) {
	if !o.has[RegKey] {
		return
	}
	alts := ioc.RegistryKeyViews(o.vals[RegKey])
	if len(alts) == 0 {
		return
	}
	keys := append([]string{o.vals[RegKey]}, alts...)
	o.views[0] = keys
	paths := make([]string, 0, len(keys))
	for _, k := range keys {
		p := ""
		if _, rest, ok := strings.Cut(k, `\`); ok {
			p = rest
		}
		if !slices.Contains(paths, p) {
			paths = append(paths, p)
		}
	}
	o.views[1] = paths
	if o.has[RegPath] {
		name := strings.ToLower(valueName)
		joined := make([]string, len(keys))
		for i, k := range keys {
			joined[i] = k + `\` + name
		}
		o.views[2] = joined
	}
}

func observe(ev *ioc.Event, o *observed) {
	switch ev.Kind {
	case ioc.EventFile:
		f := ev.File
		if f == nil {
			return
		}
		o.set(FileMD5, f.MD5)
		o.set(FileSHA1, f.SHA1)
		o.set(FileSHA256, f.SHA256)
		o.set(FileSHA512, f.SHA512)
		o.set(FilePath, f.Path)
		name := f.Name
		if name == "" {
			name = baseName(f.Path)
		}
		o.set(FileName, name)
		if i := strings.LastIndexByte(name, '.'); i >= 0 && i < len(name)-1 {
			o.set(FileExt, name[i+1:])
		}
		o.set(FileDir, dirName(o.vals[FilePath]))
		o.num(FileSize, f.Size, f.Size > 0) // 0: not reported
	case ioc.EventProcess:
		p := ev.Process
		if p == nil {
			return
		}
		name := p.Name
		if name == "" {
			name = baseName(p.Path)
		}
		o.set(ProcName, name)
		o.set(ProcPath, p.Path)
		o.set(ProcDir, dirName(o.vals[ProcPath]))
		o.set(ProcCmdLine, p.CommandLine)
		o.set(ProcParentName, p.ParentName)
		o.set(ProcSHA256, p.SHA256)
		o.num(ProcPID, int64(p.PID), p.PID > 0)
	case ioc.EventNetwork:
		n := ev.Network
		if n == nil {
			return
		}
		o.set(NetProtocol, n.Protocol)
		o.set(NetLocalAddr, n.LocalAddress)
		o.num(NetLocalPort, int64(n.LocalPort), n.LocalPort > 0)
		o.set(NetRemoteAddr, n.RemoteAddress)
		o.num(NetRemotePort, int64(n.RemotePort), n.RemotePort > 0)
	case ioc.EventDNS:
		d := ev.DNS
		if d == nil {
			return
		}
		o.host(DNSQuery, d.Query)
		for _, a := range d.Answers {
			if strings.TrimSpace(a) != "" {
				o.answers = append(o.answers, hostValue(DNSAnswer, a))
			}
		}
	case ioc.EventHTTP:
		h := ev.HTTP
		if h == nil {
			return
		}
		o.set(HTTPURL, h.URL)
		o.set(HTTPMethod, h.Method)
		if o.has[HTTPURL] {
			o.host(HTTPHost, urlHost(o.vals[HTTPURL]))
			o.set(HTTPURI, urlURI(o.vals[HTTPURL]))
		}
	case ioc.EventRegistry:
		r := ev.Registry
		if r == nil {
			return
		}
		o.set(RegKey, r.Key)
		o.set(RegKeyPath, r.Key)
		o.set(RegValueName, r.ValueName)
		if o.has[RegKey] && r.ValueName != "" {
			// The value name as it is: in the registry "Run\x " is
			// another value than "Run\x" (and the atomic registry set
			// joins it so).
			o.vals[RegPath], o.has[RegPath] = o.vals[RegKey]+`\`+strings.ToLower(r.ValueName), true
		}
		o.set(RegData, r.Data)
		o.set(ServiceName, serviceName(o.vals[RegKey]))
		o.registryViews(r.ValueName)
	case ioc.EventMutex:
		if ev.Mutex != nil {
			o.set(MutexName, ev.Mutex.Name)
		}
	}
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// urlHost returns the host of an absolute URL, without brackets or port.
func urlHost(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		rest = rest[i+1:]
	}
	if strings.HasPrefix(rest, "[") {
		if i := strings.IndexByte(rest, ']'); i >= 0 {
			return rest[1:i]
		}
		return ""
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// dirName returns the directory part of a path ("" when it has none).
func dirName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i > 0 {
		return p[:i]
	} else if i == 0 {
		return p[:1]
	}
	return ""
}

// urlURI returns the path and query of an absolute URL.
func urlURI(u string) string {
	_, rest, ok := strings.Cut(u, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		return rest[i:]
	}
	return "/"
}

// serviceName returns the service a normalized registry key configures:
// the element after "services" under hkey_local_machine\system\<control
// set>\.
func serviceName(key string) string {
	rest, ok := strings.CutPrefix(key, `hkey_local_machine\system\`)
	if !ok {
		return ""
	}
	set, rest, ok := strings.Cut(rest, `\`)
	if !ok || !(set == "currentcontrolset" || strings.HasPrefix(set, "controlset")) {
		return ""
	}
	rest, ok = strings.CutPrefix(rest, `services\`)
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, `\`)
	return name
}
