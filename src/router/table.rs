//! A table from a reactor's own connections to per-connection state, in one array index.

use super::ConnId;

/// Per-connection values for the connections of one reactor, indexed by slab slot and
/// checked by generation. Lookups are one bounds check and one compare.
#[derive(Debug)]
pub struct ConnTable<T> {
    slots: Vec<Option<(u32, T)>>,
    len: usize,
}

impl<T> Default for ConnTable<T> {
    fn default() -> Self {
        ConnTable {
            slots: Vec::new(),
            len: 0,
        }
    }
}

impl<T> ConnTable<T> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sets the value for `id`, replacing whatever an older generation left in the slot.
    pub fn insert(&mut self, id: ConnId, value: T) {
        let slot = id.slot as usize;
        if slot >= self.slots.len() {
            self.slots.resize_with(slot + 1, || None);
        }
        if self.slots[slot].replace((id.generation, value)).is_none() {
            self.len += 1;
        }
    }

    pub fn get(&self, id: ConnId) -> Option<&T> {
        match self.slots.get(id.slot as usize) {
            Some(Some((g, v))) if *g == id.generation => Some(v),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut T> {
        match self.slots.get_mut(id.slot as usize) {
            Some(Some((g, v))) if *g == id.generation => Some(v),
            _ => None,
        }
    }

    pub fn remove(&mut self, id: ConnId) -> Option<T> {
        let entry = self.slots.get_mut(id.slot as usize)?;
        match entry {
            Some((g, _)) if *g == id.generation => {
                self.len -= 1;
                entry.take().map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// Every live entry, with the id it was stored under (the reactor index is `reactor`).
    pub fn iter(&self, reactor: u16) -> impl Iterator<Item = (ConnId, &T)> {
        self.slots.iter().enumerate().filter_map(move |(slot, e)| {
            e.as_ref()
                .map(|(g, v)| (ConnId::new(reactor, slot as u32, *g), v))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_generation_hides_the_older() {
        let mut t = ConnTable::new();
        let old = ConnId::new(0, 3, 1);
        let new = ConnId::new(0, 3, 2);
        t.insert(old, "old");
        assert_eq!(t.get(old), Some(&"old"));
        assert_eq!(t.remove(old), Some("old"));
        t.insert(new, "new");
        assert_eq!(t.get(old), None);
        assert_eq!(t.remove(old), None);
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(new), Some(&"new"));
    }
}
