//! Small lookups in a parsed PDF that both probing (is there a text layer?) and text
//! extraction (in aperture-analyze) need.

use lopdf::{Dictionary, Document, Object, ObjectId};

/// The page's resource dictionaries, its own first, then those it inherits.
pub fn page_resources(doc: &Document, page: ObjectId) -> Vec<&Dictionary> {
    let Ok((direct, referenced)) = doc.get_page_resources(page) else {
        return Vec::new();
    };
    direct
        .into_iter()
        .chain(
            referenced
                .into_iter()
                .filter_map(|id| doc.get_dictionary(id).ok()),
        )
        .collect()
}

/// The dictionary an object is or refers to.
pub fn deref_dict<'a>(doc: &'a Document, object: &'a Object) -> Option<&'a Dictionary> {
    doc.dereference(object).ok()?.1.as_dict().ok()
}
