const rows=require('fs').readFileSync(process.argv[2],'utf8').trim().split('\n').map(l=>l.split(' ').map(Number));
const acc={U:{o:0,c:0,i:0,n:0},K:{o:0,c:0,i:0,n:0}};
for(let i=2;i<rows.length;i++){const [t,k,o,c,it]=rows[i],p=rows[i-1],q=rows[i-2];const dor=o-p[2];if(dor<300)continue;
 // keys counter lags; call K if keys grew over the last two samples
 const m=(k>q[1])?'K':'U';const a=acc[m];a.o+=dor;a.c+=c-p[3];a.i+=it-p[4];a.n++}
for(const m of ['U','K']){const a=acc[m];console.log(m,'samples',a.n,'orders',a.o,'ctxt/order',(a.c/a.o).toFixed(1),'intr/order',(a.i/a.o).toFixed(1))}
