// Package misp reads MISP event exports (JSON): one event
// ({"Event": {…}}), a list of them, or a REST search answer
// ({"response": […]}).
//
// Only attributes with to_ids true (and not deleted) become indicators,
// from the event's Attribute list and from its objects' attributes. The
// attribute types read:
//
//	md5 sha1 sha256 sha512           the digest
//	filename|md5 (|sha1 |sha256 |sha512)  the digest; the file name goes in the description
//	ip-src ip-dst                    ipv4, ipv6 or cidr
//	ip-src|port ip-dst|port          a logic tree: remote address and remote port
//	domain, hostname                 domain (with subdomains), hostname (exact)
//	domain|ip                        both
//	url                              the URL; without a scheme, over http and over https
//	filename                         file-name (file-path when it has a separator)
//	regkey                           registry-key
//	regkey|value                     a logic tree: the key (or key\value name) and the data
//	mutex                            mutex
//	yara                             a YARA rule source, returned apart
//
// Other types with to_ids true are counted and reported as warnings. The
// event's threat level sets the severity (1 high, 2 medium, 3 low, 4 or
// none: the Config's); its tags and the attribute's become the tags. A bad
// attribute makes Parse fail with an *Error giving the JSON path
// ("[0].Event.Attribute[3].value") and what is wrong.
//
// # Usage
//
//	res, err := misp.Parse(data, misp.Config{Name: "misp-export.json"})
//	set, err := ioc.Compile(res.Indicators)
//	trees, err := logic.Compile(res.Trees)
//
// # Concurrency
//
// Parse is safe for concurrent use.
package misp
