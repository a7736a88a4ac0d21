package mbuf

// A Tag is struct m_tag: a typed blob attached to a packet (its head mbuf). Tags are
// ordinary Go heap objects, like FreeBSD's malloc(9)ed tags and unlike OpenBSD's mtagpl
// pool, and like that pool they are not charged to the memory Limit: they are small,
// few, and never on the data path of a relay.
type Tag struct {
	next   *Tag
	Cookie uint32 // m_tag_cookie: the module that owns the type (0: MTAG_ABI_COMPAT)
	Type   uint16 // m_tag_id
	Data   []byte // the payload
}

// MTagPersistent is MTAG_PERSISTENT: a tag TagDeleteNonPersistent keeps.
const MTagPersistent uint16 = 0x800

// NewTag is m_tag_alloc(9): a tag of cookie and type with a zeroed n-byte payload. It
// returns nil if n is negative, as the C routine does.
func NewTag(cookie uint32, typ uint16, n int) *Tag {
	if n < 0 {
		return nil
	}
	return &Tag{Cookie: cookie, Type: typ, Data: make([]byte, n)}
}

// TagGet is m_tag_get(9): NewTag with cookie 0.
func TagGet(typ uint16, n int) *Tag { return NewTag(0, typ, n) }

// Next returns the tag after t on its packet (m_tag_next).
func (t *Tag) Next() *Tag { return t.next }

// Copy is m_tag_copy(9): a deep copy of t, not on any packet.
func (t *Tag) Copy() *Tag {
	return &Tag{Cookie: t.Cookie, Type: t.Type, Data: append([]byte(nil), t.Data...)}
}

// TagFirst is m_tag_first(9): the newest tag of m's packet, or nil.
func (m *Mbuf) TagFirst() *Tag {
	m.mustHdr("TagFirst")
	return m.tags
}

// TagPrepend is m_tag_prepend(9): it attaches t to m's packet as its newest tag. m must
// have a packet header and t must not be on a packet already.
func (m *Mbuf) TagPrepend(t *Tag) {
	m.mustHdr("TagPrepend")
	t.next = m.tags
	m.tags = t
}

// TagLocate is m_tag_locate(9): the first tag of cookie and typ after start (from the
// newest if start is nil), or nil.
func (m *Mbuf) TagLocate(cookie uint32, typ uint16, start *Tag) *Tag {
	m.mustHdr("TagLocate")
	t := m.tags
	if start != nil {
		t = start.next
	}
	for ; t != nil; t = t.next {
		if t.Cookie == cookie && t.Type == typ {
			return t
		}
	}
	return nil
}

// TagFind is m_tag_find(9): TagLocate with cookie 0.
func (m *Mbuf) TagFind(typ uint16, start *Tag) *Tag { return m.TagLocate(0, typ, start) }

// TagDelete is m_tag_delete(9): it unlinks t from m's packet. A tag not on it is ignored.
func (m *Mbuf) TagDelete(t *Tag) {
	m.mustHdr("TagDelete")
	for p := &m.tags; *p != nil; p = &(*p).next {
		if *p == t {
			*p = t.next
			t.next = nil
			return
		}
	}
}

// TagDeleteChain is m_tag_delete_chain(9): it deletes start and every tag after it, or
// every tag if start is nil.
func (m *Mbuf) TagDeleteChain(start *Tag) {
	m.mustHdr("TagDeleteChain")
	if start == nil {
		m.tags = nil
		return
	}
	for p := &m.tags; *p != nil; p = &(*p).next {
		if *p == start {
			*p = nil
			return
		}
	}
}

// TagDeleteNonPersistent is m_tag_delete_nonpersistent(9): it keeps only the tags whose
// type has MTagPersistent.
func (m *Mbuf) TagDeleteNonPersistent() {
	m.mustHdr("TagDeleteNonPersistent")
	p := &m.tags
	for *p != nil {
		if (*p).Type&MTagPersistent == 0 {
			*p = (*p).next
			continue
		}
		p = &(*p).next
	}
}

// TagCopyChain is m_tag_copy_chain(9): it replaces to's tags by deep copies of from's, in
// the same order. Both must have packet headers. It cannot fail (see Tag).
func (to *Mbuf) TagCopyChain(from *Mbuf) {
	to.mustHdr("TagCopyChain")
	from.mustHdr("TagCopyChain")
	to.tags = nil
	p := &to.tags
	for t := from.tags; t != nil; t = t.next {
		*p = t.Copy()
		p = &(*p).next
	}
}
