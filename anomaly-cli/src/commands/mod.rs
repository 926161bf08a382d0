pub(crate) mod consumption;
pub(crate) mod iforest;
