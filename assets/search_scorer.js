// The book's search ranks a page whose title holds the query above the API entries that
// merely contain it: a reader who types "ICC" wants the chapter on the intra-class
// correlation first, then the functions that compute it. Sphinx's defaults otherwise
// (sphinx/themes/basic/static/searchtools.js): API names score 11 + 5, a title word 15.
var Scorer = {
  objNameMatch: 11,
  objPartialMatch: 6,
  objPrio: {
    0: 15,
    1: 5,
    2: -5,
  },
  objPrioDefault: 0,
  title: 30,
  partialTitle: 12,
  term: 5,
  partialTerm: 2,
};
