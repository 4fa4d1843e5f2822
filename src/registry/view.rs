//! Scoping: which networks an asker may see.
//!
//! A container sees the networks it is attached to; anything else sees the default view.
//! Views are immutable values swapped in whole by the writer; readers only test membership.

use super::NetId;

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum View {
    /// Every network.
    #[default]
    All,
    /// Only these, sorted.
    Only(Box<[NetId]>),
}

impl View {
    pub fn only(mut ids: Vec<NetId>) -> View {
        ids.sort_unstable();
        ids.dedup();
        View::Only(ids.into())
    }

    /// The networks of an `Only` view, in order; none for `All` (which names no network).
    pub fn networks(&self) -> &[NetId] {
        match self {
            View::All => &[],
            View::Only(ids) => ids,
        }
    }

    pub fn contains(&self, id: NetId) -> bool {
        match self {
            View::All => true,
            View::Only(ids) => ids.binary_search(&id).is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_view_contains_its_networks() {
        let v = View::only(vec![NetId(3), NetId(1)]);
        assert!(v.contains(NetId(1)) && v.contains(NetId(3)));
        assert!(!v.contains(NetId(2)));
        assert!(View::All.contains(NetId(9)));
    }
}
