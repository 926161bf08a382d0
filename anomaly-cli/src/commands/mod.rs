pub(crate) mod consumption;
pub(crate) mod credit;
pub(crate) mod forecast;
pub(crate) mod iforest;
pub(crate) mod plant;
